#!/bin/bash
# Install Knative Serving CRDs + config (module cache; versions of hack/knbin/go.mod)
# and its webhook configurations (ExternalName Service -> localhost:$KN_WEBHOOK_PORT).
# Usage: KUBECONFIG=... hack/kn-install.sh
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
K=$KUBECTL
S=$(moddir knative.dev/serving); N=$(moddir knative.dev/networking); C=$(moddir knative.dev/caching)
$K apply -f "$S/config/core/100-namespace.yaml"
$K apply -f "$S/config/core/300-resources/" -f "$N/config/ingress.yaml" -f "$N/config/serverlessservice.yaml" \
  -f "$N/config/certificate.yaml" -f "$N/config/domain-claim.yaml" -f "$C/config/image.yaml"
# a CRD created a moment ago may have no .status yet -> kubectl wait exits 1; retry
for _ in $(seq 1 60); do $K wait --for=condition=Established --timeout=60s crd --all && break; sleep 0.5; done
$K apply -f "$S/config/core/configmaps/" -f "$N/config/config-network.yaml"
$K -n knative-serving patch cm config-deployment --type merge -p \
 '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local,example.invalid","queue-sidecar-image":"example.invalid/queue-proxy:1","progress-deadline":"120s"}}'
$K -n knative-serving patch cm config-network --type merge -p '{"data":{"ingress-class":"fake.ingress.infadapter.io"}}'
W=$(mktemp -d)
for f in defaulting resource-validation configmap-validation; do
  sed "s/^      namespace: knative-serving\$/      namespace: knative-serving\n      port: $KN_WEBHOOK_PORT/" "$S/config/core/webhooks/$f.yaml" > "$W/$f.yaml"
done
cat > "$W/svc.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: webhook, namespace: knative-serving}
spec: {type: ExternalName, externalName: localhost, ports: [{name: https-webhook, port: $KN_WEBHOOK_PORT}]}
Y
$K apply -f "$S/config/core/webhooks/secret.yaml" -f "$W/"
rm -rf "$W"
