#!/bin/bash
# Bring up the whole script-driven testbed in RUNDIR (default /tmp/infadapter-testbed):
# etcd + apiserver + KCM + scheduler + kwok (2 nodes) + Knative + KServe + fake ingress.
# For poking at it by hand with kubectl; the e2e tests use the Go harness instead.
# Usage: hack/testbed-up.sh [RUNDIR]; then export KUBECONFIG=RUNDIR/pki/kubeconfig;
# stop with hack/stop-testbed.sh RUNDIR.
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
R=${1:-/tmp/infadapter-testbed}; mkdir -p "$R/logs"; R=$(cd "$R" && pwd)
export KUBECONFIG=$R/pki/kubeconfig
T0=$(date +%s.%N); el() { printf '[%6.2fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
"$HACK/start-cp.sh" "$R" >/dev/null; el "apiserver ready"
"$HACK/start-workers.sh" "$R" >/dev/null; el "KCM/scheduler/kwok up, nodes Ready"
"$HACK/kn-install.sh" > "$R/logs/kn-install.log" 2>&1; el "knative installed"
"$HACK/kn-start.sh" "$R" >/dev/null
"$HACK/kserve-install.sh" "$R" > "$R/logs/kserve-install.log" 2>&1; el "kserve installed"
"$HACK/kserve-start.sh" "$R" >/dev/null
start fake-ingress "$HACK/fake-ingress.sh"
DRY='{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"dry","namespace":"default"},"spec":{"template":{"spec":{"containers":[{"image":"example.invalid/dry-run:1"}]}}}}'
for _ in $(seq 1 450); do echo "$DRY" | $KUBECTL apply --dry-run=server -f - >/dev/null 2>&1 && break; sleep 0.2; done
el "knative webhook admitting"
echo "export KUBECONFIG=$KUBECONFIG   # stop: hack/stop-testbed.sh $R"
