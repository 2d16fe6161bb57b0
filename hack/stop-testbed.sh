#!/bin/bash
# Stop every process a hack/ testbed script started under RUNDIR, by recorded
# PID (SIGTERM, SIGKILL after 1 s; etcd/apiserver last, 3 s). Usage: hack/stop-testbed.sh RUNDIR
R=${1:?rundir}
stop() {
  local f=$R/$1.pid g=${2:-10}; [ -f "$f" ] || return 0
  local p; p=$(cat "$f")
  kill "$p" 2>/dev/null
  for _ in $(seq 1 "$g"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  rm -f "$f"
}
for n in fake-ingress kserve-manager kn-controller kn-webhook kwok kube-scheduler kube-controller-manager; do stop $n 10 & done
wait
stop kube-apiserver 30
stop etcd 30
echo "stopped $R"
