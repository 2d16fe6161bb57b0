#!/bin/bash
# Crude stand-in for a Knative networking layer for the script testbed: mark every
# networking.internal.knative.dev Ingress Ready (polls every 0.3 s). The Go harness
# has an informer-based equivalent (e2e/harness/ingress.go). Usage: KUBECONFIG=... hack/fake-ingress.sh
source "$(dirname "$0")/testbed-env.sh"
K=$KUBECTL
while true; do
  $K get ingresses.networking.internal.knative.dev -A --no-headers \
     -o custom-columns=NS:.metadata.namespace,N:.metadata.name,G:.metadata.generation,OG:.status.observedGeneration 2>/dev/null |
  while read -r ns n g og; do
    [ "$g" = "$og" ] && continue
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    $K -n "$ns" patch ingresses.networking.internal.knative.dev "$n" --subresource=status --type=merge -p '{"status":{
     "observedGeneration":'"$g"',
     "publicLoadBalancer":{"ingress":[{"domainInternal":"fake-ingress.knative-serving.svc.cluster.local"}]},
     "privateLoadBalancer":{"ingress":[{"domainInternal":"fake-ingress-internal.knative-serving.svc.cluster.local"}]},
     "conditions":[{"type":"LoadBalancerReady","status":"True","lastTransitionTime":"'"$now"'"},{"type":"NetworkConfigured","status":"True","lastTransitionTime":"'"$now"'"},{"type":"Ready","status":"True","lastTransitionTime":"'"$now"'"}]}}' >/dev/null
  done
  sleep 0.3
done
