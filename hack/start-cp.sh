#!/bin/bash
# Start etcd + kube-apiserver (loopback only) under RUNDIR and wait for /readyz.
# Usage: hack/start-cp.sh RUNDIR   (binaries: hack/testbin/build.sh; ports: hack/testbed-env.sh)
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
R=$(mkdir -p "${1:?rundir}/logs" && cd "$1" && pwd); B=$K8S_BIN; P=$R/pki
[ -x "$B/kube-apiserver" ] || { echo "no binaries in $B: run hack/testbin/build.sh" >&2; exit 1; }
"$HACK/mkpki.sh" "$P" "$APISERVER_PORT"
E=http://127.0.0.1:$ETCD_PORT; EP=http://127.0.0.1:$ETCD_PEER_PORT
start etcd "$B/etcd" --data-dir="$R/etcd" --listen-client-urls=$E --advertise-client-urls=$E \
  --listen-peer-urls=$EP --initial-advertise-peer-urls=$EP --initial-cluster=default=$EP --unsafe-no-fsync --log-level=warn
start kube-apiserver "$B/kube-apiserver" --etcd-servers=$E \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=$APISERVER_PORT \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --service-account-issuer=https://127.0.0.1:$APISERVER_PORT \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC --allow-privileged=true \
  --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none --cert-dir="$R/apiserver-certs"
# anonymous requests get 401 even on /readyz: use the admin cert
for i in $(seq 1 300); do
  curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null && { echo "apiserver ready; KUBECONFIG=$P/kubeconfig"; exit 0; }
  sleep 0.2
done
echo "apiserver not ready; see $R/logs/kube-apiserver.log" >&2; exit 1
