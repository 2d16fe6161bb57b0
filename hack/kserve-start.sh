#!/bin/bash
# Start the KServe manager (hack/knbin build) under RUNDIR. Usage: hack/kserve-start.sh RUNDIR
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
R=$(cd "${1:?rundir}" && pwd)
start kserve-manager env POD_NAMESPACE=kserve TMPDIR="$R/kserve-tmp" KUBECONFIG="$R/pki/kubeconfig" "$KN_BIN/kserve-manager" \
  --metrics-addr=127.0.0.1:18080 --health-probe-addr=127.0.0.1:18081 --webhook-port=$KSERVE_WEBHOOK_PORT --leader-elect=false
echo "kserve manager started (webhook :$KSERVE_WEBHOOK_PORT)"
