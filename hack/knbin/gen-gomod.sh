#!/bin/bash
# Regenerate go.mod/go.sum of the Knative/KServe test-binaries wrapper module:
# knative.dev/serving cmd/controller + cmd/webhook and github.com/kserve/kserve cmd/manager,
# built with exactly the pins of the root go.mod (serving v0.48.1, kserve v0.20.0,
# k8s.io/* => v0.34.x, controller-runtime => v0.22.5, otelhttp => v0.64.0, otel => v1.39.0).
# Run by a developer when the root go.mod's knative/kserve versions change; commit go.mod + go.sum.
set -euo pipefail
cd "$(dirname "$0")"
ROOTMOD=../../go.mod
ver() { awk -v m="$1" '$1==m && $2 ~ /^v/ {print $2; exit}' "$ROOTMOD"; }
SV=$(ver knative.dev/serving); KS=$(ver github.com/kserve/kserve); PKG=$(ver knative.dev/pkg); NET=$(ver knative.dev/networking)
{
  echo "module local/knbin"; echo; echo "go 1.26.0"; echo
  echo "tool ("
  echo "	knative.dev/serving/cmd/controller"
  echo "	knative.dev/serving/cmd/webhook"
  echo "	github.com/kserve/kserve/cmd/manager"
  echo ")"; echo
  echo "require ("
  echo "	knative.dev/serving $SV"
  echo "	github.com/kserve/kserve $KS"
  echo "	knative.dev/pkg $PKG"
  [ -n "$NET" ] && echo "	knative.dev/networking $NET"
  echo ")"; echo
  # every replace directive of the root go.mod, verbatim
  awk '/^replace \($/{inb=1} inb{print} inb && /^\)$/{inb=0; print ""} /^replace [^(]/{print; print ""}' "$ROOTMOD"
} > go.mod
rm -f go.sum
go mod tidy
echo "gen-gomod: serving $SV kserve $KS pkg $PKG networking $NET"
