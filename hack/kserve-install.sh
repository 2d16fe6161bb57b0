#!/bin/bash
# Install KServe CRDs + config (module cache; no Istio; kserve/* images rewritten to
# example.invalid) and its webhooks (self-signed cert in RUNDIR/kserve-tmp, ExternalName
# Service -> localhost:$KSERVE_WEBHOOK_PORT). Usage: hack/kserve-install.sh RUNDIR
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
R=$(cd "${1:?rundir}" && pwd); export KUBECONFIG=${KUBECONFIG:-$R/pki/kubeconfig}; K=$KUBECTL
KS=$(moddir github.com/kserve/kserve); CRD=$KS/config/crd/full
$K create namespace kserve --dry-run=client -o yaml | $K apply -f -
$K apply --server-side -f "$CRD/serving.kserve.io_clusterservingruntimes.yaml" -f "$CRD/serving.kserve.io_inferencegraphs.yaml" \
  -f "$CRD/serving.kserve.io_inferenceservices.yaml" -f "$CRD/serving.kserve.io_servingruntimes.yaml" \
  -f "$CRD/serving.kserve.io_trainedmodels.yaml" -f "$CRD/clusterstoragecontainer/serving.kserve.io_clusterstoragecontainers.yaml"
for _ in $(seq 1 60); do $K wait --for=condition=Established --timeout=60s crd --all && break; sleep 0.5; done
sed -e 's/"disableIstioVirtualHost": false/"disableIstioVirtualHost": true/' \
    -e 's#"image"\(\s*\):\(\s*\)"kserve/\([a-z0-9-]*\)\(:[^"]*\)\?"#"image"\1:\2"example.invalid/kserve-\3:1"#' \
    "$KS/config/configmap/inferenceservice.yaml" | $K apply -n kserve -f -
# CRD Established != already in discovery: retry the first custom resource of a new CRD
for _ in $(seq 1 30); do
  sed -E 's#image: .*#image: example.invalid/kserve-storage-initializer:1#' "$KS/config/storagecontainers/default.yaml" | $K apply -f - && break
  sleep 1
done
D=$R/kserve-tmp/k8s-webhook-server/serving-certs; mkdir -p "$D"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/tls.key" -out "$D/tls.crt" -days 365 \
  -subj "/CN=kserve-webhook-server-service.kserve.svc" \
  -addext "subjectAltName=DNS:kserve-webhook-server-service.kserve.svc,DNS:localhost" >/dev/null 2>&1
CA=$(base64 -w0 < "$D/tls.crt")
sed -e 's/\$(webhookServiceName)/kserve-webhook-server-service/' -e 's/\$(kserveNamespace)/kserve/' \
    -e "s#^\(\s*\)path: \(/.*\)#\1path: \2\n\1port: $KSERVE_WEBHOOK_PORT#" -e "s#^\(\s*\)service:\$#\1caBundle: $CA\n\1service:#" \
    "$KS/config/webhook/manifests.yaml" | $K apply -f -
$K apply -f - <<Y
apiVersion: v1
kind: Service
metadata: {name: kserve-webhook-server-service, namespace: kserve}
spec: {type: ExternalName, externalName: localhost, ports: [{name: https, port: $KSERVE_WEBHOOK_PORT}]}
Y
