#!/bin/bash
# Regenerate go.mod/go.sum of the test-binaries wrapper module (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok). Run by a developer on a
# version bump, then commit go.mod + go.sum. CI only runs build.sh.
#
# Usage: hack/testbin/gen-gomod.sh [K8S 1.37.2] [KWOK v0.8.0] [ETCD v3.7.3]
#
# Why a wrapper: `go install k8s.io/kubernetes/cmd/...@v` and `go install
# go.etcd.io/etcd/server/v3@v` fail because those modules use replace directives.
# Here we repeat k8s.io/kubernetes' "./staging" replaces as k8s.io/X => k8s.io/X v0.<minor>.<patch>.
set -euo pipefail
cd "$(dirname "$0")"
KV=${1:-1.37.2}; KWOK=${2:-v0.8.0}; ETCD=${3:-v3.7.3}
GOMODCACHE=$(go env GOMODCACHE)
(cd /tmp && go list -m -json "k8s.io/kubernetes@v$KV" >/dev/null)
STAGING=$(awk '/=> \.\/staging/{print $1}' "$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/v$KV.mod")
{
  echo "module local/testbin"; echo; echo "go 1.26.0"; echo
  echo "tool ("
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do echo "	k8s.io/kubernetes/cmd/$c"; done
  echo "	go.etcd.io/etcd/server/v3"
  echo "	sigs.k8s.io/kwok/cmd/kwok"
  echo ")"; echo
  echo "require ("
  echo "	k8s.io/kubernetes v$KV"
  echo "	go.etcd.io/etcd/server/v3 $ETCD"
  echo "	sigs.k8s.io/kwok $KWOK"
  echo ")"; echo
  echo "replace ("
  for m in $STAGING; do echo "	$m => $m v0.${KV#1.}"; done
  echo ")"
} > go.mod
rm -f go.sum
go mod tidy
echo "gen-gomod: wrote $(pwd)/go.mod ($(wc -l < go.mod) lines) and go.sum ($(wc -l < go.sum) lines)"
