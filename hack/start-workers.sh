#!/bin/bash
# Start kube-controller-manager, kube-scheduler and kwok (resize-aware stages,
# node leases) under RUNDIR and create NODES fake nodes of CPU cores (default 2 x 8).
# Usage: hack/start-workers.sh RUNDIR [NODES] [CPU]
set -euo pipefail
source "$(dirname "$0")/testbed-env.sh"
R=$(cd "${1:?rundir}" && pwd); B=$K8S_BIN; KC=$R/pki/kubeconfig; NODES=${2:-2}; CPU=${3:-8}
start kube-controller-manager "$B/kube-controller-manager" --kubeconfig="$KC" --leader-elect=false --secure-port=0 \
  --controllers=deployment,replicaset,garbagecollector,namespace,nodelifecycle,podgc,disruption --node-monitor-grace-period=2m
start kube-scheduler "$B/kube-scheduler" --kubeconfig="$KC" --leader-elect=false --secure-port=0
start kwok "$B/kwok" --kubeconfig="$KC" --config="$HACK/kwok.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=127.0.0.1 --cidr=127.1.0.0/16 --server-address=127.0.0.1:$KWOK_PORT --node-port=$KWOK_PORT \
  --node-lease-duration-seconds=40
for i in $(seq 0 $((NODES-1))); do
cat <<Y
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "$CPU", memory: 32Gi, pods: "110"}
  capacity: {cpu: "$CPU", memory: 32Gi, pods: "110"}
  nodeInfo: {architecture: amd64, kubeletVersion: fake, operatingSystem: linux}
Y
done | "$KUBECTL" --kubeconfig="$KC" apply -f - >/dev/null
"$KUBECTL" --kubeconfig="$KC" wait --for=condition=Ready --timeout=60s node --all >/dev/null
echo "workers up: $NODES kwok nodes x $CPU cores"
