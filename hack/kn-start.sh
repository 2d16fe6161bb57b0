#!/bin/bash
# Start Knative Serving's webhook and controller (hack/knbin build; the controller
# is cmd/kn-controller = upstream with health probes off) under RUNDIR.
# Usage: hack/kn-start.sh RUNDIR
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
R=$(cd "${1:?rundir}" && pwd); KC=$R/pki/kubeconfig
COMMON="SYSTEM_NAMESPACE=knative-serving CONFIG_LOGGING_NAME=config-logging CONFIG_OBSERVABILITY_NAME=config-observability METRICS_PROMETHEUS_HOST=127.0.0.1"
start kn-webhook env $COMMON POD_NAME=webhook-local WEBHOOK_NAME=webhook WEBHOOK_PORT=$KN_WEBHOOK_PORT PROFILING_PORT=18009 \
  METRICS_PROMETHEUS_PORT=19091 "$KN_BIN/webhook" --kubeconfig="$KC"
start kn-controller env $COMMON POD_NAME=controller-local PROFILING_PORT=18008 METRICS_PROMETHEUS_PORT=19090 \
  "$KN_BIN/kn-controller" --kubeconfig="$KC"
echo "knative webhook (:$KN_WEBHOOK_PORT) and controller started"
