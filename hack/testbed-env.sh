# Sourced by the hack/ testbed scripts: locates the cached test binaries and
# the module versions. Not executable on its own.
HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTBIN_ROOT=${INFADAPTER_TESTBIN:-$HOME/.cache/infadapter/testbin}
K8S_VERSION=$(awk '$1=="k8s.io/kubernetes"{print substr($2,2); exit}' "$HACK/testbin/go.mod")
SERVING_VERSION=$(awk '$1=="knative.dev/serving"{print $2; exit}' "$HACK/knbin/go.mod")
KSERVE_VERSION=$(awk '$1=="github.com/kserve/kserve"{print $2; exit}' "$HACK/knbin/go.mod")
NETWORKING_VERSION=$(awk '$1=="knative.dev/networking"{print $2; exit}' "$HACK/knbin/go.mod")
CACHING_VERSION=$(awk '$1=="knative.dev/caching"{print $2; exit}' "$HACK/knbin/go.mod")
K8S_BIN=${K8S_BIN:-$TESTBIN_ROOT/k8s-$K8S_VERSION}
KN_BIN=${KN_BIN:-$TESTBIN_ROOT/knative-$SERVING_VERSION-kserve-$KSERVE_VERSION}
KUBECTL=${KUBECTL:-$K8S_BIN/kubectl}
# Fixed loopback ports of the script-driven testbed (the Go harness picks free ones).
ETCD_PORT=${ETCD_PORT:-2379}; ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}; APISERVER_PORT=${APISERVER_PORT:-6443}
KWOK_PORT=${KWOK_PORT:-10247}; KN_WEBHOOK_PORT=${KN_WEBHOOK_PORT:-18443}; KSERVE_WEBHOOK_PORT=${KSERVE_WEBHOOK_PORT:-19443}
moddir() { (cd "$HACK/knbin" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'); }
# start NAME CMD... : start a binary in the background, log to $R/logs/NAME.log, pid to $R/NAME.pid
start() { local n=$1; shift; "$@" > "$R/logs/$n.log" 2>&1 & echo $! > "$R/$n.pid"; }
