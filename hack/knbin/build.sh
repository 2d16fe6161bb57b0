#!/bin/bash
# Build Knative Serving controller + webhook and the KServe manager (versions and pins of
# the root go.mod, see gen-gomod.sh) into $OUT, default
#   ${INFADAPTER_TESTBIN:-$HOME/.cache/infadapter/testbin}/knative-<serving>-kserve-<kserve>/
# Idempotent: does nothing when $OUT/.stamp matches the hash of go.mod+go.sum+this script.
# Cold: ~5-7 min on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")"
SV=$(awk '$1=="knative.dev/serving"{print $2; exit}' go.mod)
KS=$(awk '$1=="github.com/kserve/kserve"{print $2; exit}' go.mod)
ROOT=${INFADAPTER_TESTBIN:-$HOME/.cache/infadapter/testbin}
OUT=${OUT:-$ROOT/knative-$SV-kserve-$KS}
STAMP=$(cat go.mod go.sum build.sh | sha256sum | cut -c1-16)
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$STAMP" ]; then
  echo "knbin: up to date in $OUT"; exit 0
fi
mkdir -p "$OUT"
rm -f "$OUT/.stamp"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
t0=$(date +%s)
echo "knbin: building knative $SV controller (probes off, cmd/kn-controller)+webhook and kserve $KS manager into $OUT"
go build -trimpath -ldflags "-s -w" -o "$OUT/" knative.dev/serving/cmd/webhook ./cmd/kn-controller
echo "knbin: knative done after $(( $(date +%s) - t0 ))s"
go build -trimpath -ldflags "-s -w" -o "$OUT/kserve-manager" github.com/kserve/kserve/cmd/manager
echo "$STAMP" > "$OUT/.stamp"
echo "knbin: built in $(( $(date +%s) - t0 ))s"
ls -la "$OUT"
echo "$OUT"
