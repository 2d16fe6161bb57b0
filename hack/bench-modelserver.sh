#!/usr/bin/env bash
# Model server throughput vs raw ONNX Runtime throughput, same model, same
# thread count, same CPU, measured in the same run (docs/benchmarks.md,
# "Model server").
#
#   raw     the model's Model.Infer at batch 1 in a loop, one worker with
#           INTRA ORT threads (the server's session configuration), in its
#           own process pinned to SERVER_CPU;
#   json    `infadapter serve-model --threads 1 --intra-op-threads INTRA`
#           pinned to SERVER_CPU, driven by wrk (closed loop, CONNS
#           keep-alive connections, one thread) pinned to CLIENT_CPU, with
#           OIP v2 JSON requests of one 1×28×28 image;
#   binary  the same server, the same image in the OIP v2 binary tensor data
#           extension (Inference-Header-Content-Length), outputs in binary;
#   batched the same server with --dynamic-batch BATCH_MAX
#           --dynamic-batch-delay-us BATCH_DELAY (server-side dynamic
#           batching), JSON requests of one image from BATCH_CONNS
#           connections — a separate row: its "server / raw" compares with
#           raw batch-1 ORT, so it is not the batch-1 overhead ratio.
#
# Each round runs every (model, kind) once, interleaved; ROUNDS rounds.
# Ratios and overheads are taken per round against that round's raw run
# (the machine is shared, so throughput drifts between rounds) and their
# median is reported with the range; req/s and CPU columns are medians. Server CPU is read from /proc/PID/stat around each run,
# so "server cores" shows whether the server had its CPU to itself and
# "CPU µs/req" is its whole per-request cost. overhead = 1e6/server − 1e6/raw
# (µs of server-CPU wall time per request beyond the inference itself).
# "CPU-time ratio" = raw CPU per inference / server CPU per request: the
# throughput ratio the server would reach with its CPU wholly its own (it
# does not depend on how much of the CPU other processes took).
#
# A/B: a kind "json@TAG" or "binary@TAG" runs that kind against another
# build of the binary, named by the env var BIN_TAG (e.g. one built from a
# `git worktree` of the previous commit), in the same rounds:
#
#   BIN_old=/tmp/old/infadapter KINDS="raw json json@old binary binary@old" \
#     flock /tmp/infadapter-bench.lock hack/bench-modelserver.sh
#
# PAIRED=1: instead of rounds of 3-s runs, alternate short slices (the
# paired role of pkg/modelserver's test binary, benchpair_test.go): one
# server per (model, kind) runs at once, idle but for its slices, and
# every server slice is compared with the mean of the raw-ORT slices just
# before and after it, which cancels the machine's drift; CYCLES cycles
# of SLICE_MS ms slices; the table gives the median ratio, its 95 %
# confidence interval, the quartiles and how many pairs reached 0.9:
#
#   PAIRED=1 MODELS="cnn-m cnn-m-tta2" KINDS="json binary" \
#     flock /tmp/infadapter-bench.lock hack/bench-modelserver.sh
#   env: CYCLES=40 SLICE_MS=400 (and MODELS, KINDS with json, binary,
#        json@TAG, binary@TAG; CONNS, INTRA, SERVER_CPU, CLIENT_CPU)
#        PAIRS_FILE=f  appends every pair ("model kind req/s ratio") to f,
#                      to pool runs (hack/pool-pairs.sh f)
#
#   flock /tmp/infadapter-bench.lock hack/bench-modelserver.sh
#   env: MODELS="linear cnn-s cnn-m cnn-m-tta2" KINDS="raw json binary batched"
#        ROUNDS=5 DURATION=3 CONNS=8 INTRA=1 SERVER_CPU=0 CLIENT_CPU=1
#        BATCH_MAX=8 BATCH_DELAY=0 BATCH_CONNS=16
#
# Needs the ONNX Runtime library (make onnxruntime), wrk and taskset
# (util-linux), 2+ CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-linear cnn-s cnn-m cnn-m-tta2}
KINDS=${KINDS:-raw json binary batched}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
CONNS=${CONNS:-8}
INTRA=${INTRA:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BATCH_MAX=${BATCH_MAX:-8}
BATCH_DELAY=${BATCH_DELAY:-0}
BATCH_CONNS=${BATCH_CONNS:-16}
for bin in wrk taskset curl go; do
  command -v "$bin" >/dev/null || { echo "bench-modelserver: $bin not found" >&2; exit 1; }
done

TMP=$(mktemp -d)
SRV_PID=
PIDS=()
cleanup() {
  [[ -n "$SRV_PID" ]] && kill "$SRV_PID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

go build -o "$TMP/infadapter" ./cmd/infadapter
go test -c -o "$TMP/ms.test" ./pkg/modelserver
INFADAPTER_MODELSERVER_BENCH=bodies "$TMP/ms.test" "$TMP"
HLEN=$(cat "$TMP/v2.bin.hlen")
cat >"$TMP/json.lua" <<EOF
local f = assert(io.open("$TMP/v2.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF
cat >"$TMP/binary.lua" <<EOF
local f = assert(io.open("$TMP/v2.bin", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "$HLEN"
EOF
cp "$TMP/json.lua" "$TMP/batched.lua"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(go version | cut -d' ' -f3)" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
TICK=$(getconf CLK_TCK)
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_server BINARY MODEL [extra flags]: sets SRV_PID and URL, waits until ready.
start_server() {
  local bin=$1 model=$2
  shift 2
  taskset -c "$SERVER_CPU" "$bin" serve-model --model "third_party/models/fmnist/$model.onnx" \
    --port 0 --threads 1 --intra-op-threads "$INTRA" --warmup 20 "$@" >"$TMP/srv$SRV_TAG.out" 2>"$TMP/srv.err" &
  SRV_PID=$!
  for _ in $(seq 200); do
    URL=$(sed -n 's/^infadapter serve-model listening on //p' "$TMP/srv$SRV_TAG.out")
    if [[ -n "$URL" ]] && curl -fs "$URL/v2/models/$model/ready" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "server for $model not ready:" >&2
  cat "$TMP/srv.err" >&2
  exit 1
}

stop_server() {
  kill "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=
}

# run_wrk KIND MODEL CONNS: one measured wrk run (after a 1 s warm-up); prints "rps cores cpu_us_per_req".
run_wrk() {
  local kind=$1 model=$2 conns=$3 out t0 t1 rps
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d1s -s "$TMP/$kind.lua" "$URL/v2/models/$model/infer" >/dev/null
  t0=$(cputicks "$SRV_PID")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" -s "$TMP/$kind.lua" "$URL/v2/models/$model/infer")
  t1=$(cputicks "$SRV_PID")
  if grep -q -e 'Non-2xx' -e 'Socket errors' <<<"$out"; then
    echo "wrk $kind $model: errors:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  awk -v r="$rps" -v d=$((t1 - t0)) -v tick="$TICK" -v dur="$DURATION" \
    'BEGIN { c = d / tick; printf "%.1f %.3f %.1f\n", r, c / dur, 1e6 * c / (r * dur) }'
}

SRV_TAG=
if [[ "${PAIRED:-}" == 1 ]]; then
  CYCLES=${CYCLES:-40}
  SLICE_MS=${SLICE_MS:-400}
  echo "paired: $CYCLES cycles of $SLICE_MS-ms slices, $CONNS connections per server" >&2
  echo "| model | kind | req/s | pairs | server / raw, median | 95 % CI | quartiles | pairs ≥ 0.9 |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for model in $MODELS; do
    targets=()
    for kind in $KINDS; do
      bin="$TMP/infadapter"
      if [[ $kind == *@* ]]; then
        binvar="BIN_${kind#*@}"
        [[ -x "${!binvar:-}" ]] || { echo "kind $kind: set $binvar to an infadapter binary" >&2; exit 2; }
        bin=${!binvar}
      fi
      case ${kind%@*} in
      json) body="$TMP/v2.json" hlen=0 ;;
      binary) body="$TMP/v2.bin" hlen=$HLEN ;;
      *) echo "PAIRED: kind $kind is not json, binary, json@TAG or binary@TAG" >&2; exit 2 ;;
      esac
      SRV_TAG=${#PIDS[@]}
      start_server "$bin" "$model"
      PIDS+=("$SRV_PID")
      SRV_PID=
      targets+=("$kind" "$URL/v2/models/$model/infer" "$body" "$hlen")
    done
    taskset -c "$CLIENT_CPU" env INFADAPTER_MODELSERVER_BENCH=paired "$TMP/ms.test" \
      "third_party/models/fmnist/$model.onnx" "$INTRA" "$SERVER_CPU" "$SLICE_MS" "$CYCLES" "$CONNS" "${targets[@]}"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    PIDS=()
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  exit 0
fi

RES="$TMP/results"
: >"$RES"
for round in $(seq "$ROUNDS"); do
  for model in $MODELS; do
    for kind in $KINDS; do
      case $kind in
      raw)
        read -r _ rps _ cores < <(taskset -c "$SERVER_CPU" env INFADAPTER_MODELSERVER_BENCH=raw \
          "$TMP/ms.test" "third_party/models/fmnist/$model.onnx" "$DURATION" "$INTRA")
        line="$rps $cores $(awk -v r="$rps" -v c="$cores" 'BEGIN { printf "%.1f", 1e6 * c / r }')"
        ;;
      json | binary)
        start_server "$TMP/infadapter" "$model"
        line=$(run_wrk "$kind" "$model" "$CONNS")
        stop_server
        ;;
      json@* | binary@*)
        binvar="BIN_${kind#*@}"
        [[ -x "${!binvar:-}" ]] || { echo "kind $kind: set $binvar to an infadapter binary" >&2; exit 2; }
        start_server "${!binvar}" "$model"
        line=$(run_wrk "${kind%@*}" "$model" "$CONNS")
        stop_server
        ;;
      batched)
        start_server "$TMP/infadapter" "$model" --dynamic-batch "$BATCH_MAX" --dynamic-batch-delay-us "$BATCH_DELAY"
        line=$(run_wrk batched "$model" "$BATCH_CONNS")
        stop_server
        ;;
      *)
        echo "unknown kind $kind" >&2
        exit 2
        ;;
      esac
      echo "round $round $model $kind: req/s cores cpu_us/req = $line (load $(cut -d' ' -f1 /proc/loadavg))" >&2
      echo "$model $kind $round $line" >>"$RES"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

awk -v models="$MODELS" -v kinds="$KINDS" '
{ key = $1 SUBSEP $2; n = ++cnt[key]; rnd[key, n] = $3; rps[key, n] = $4; cores[key, n] = $5; cpu[key, n] = $6
  if ($2 == "raw") { rawr[$1, $3] = $4; rawc[$1, $3] = $6 } }
function median(a, n,   i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function med(arr, key,   i, n, a) { n = cnt[key]; for (i = 1; i <= n; i++) a[i] = arr[key, i]; return median(a, n) }
END {
	print "| model | kind | req/s | server / raw (min–max) | overhead µs/req | server cores | server CPU µs/req | CPU-time ratio |"
	print "|---|---|---:|---:|---:|---:|---:|---:|"
	nm = split(models, M, " "); nk = split(kinds, K, " ")
	for (i = 1; i <= nm; i++) for (j = 1; j <= nk; j++) {
		m = M[i]; k = K[j]; key = m SUBSEP k; n = cnt[key]; if (!n) continue
		ratio = "1"; ov = "–"; cr = "1"
		if (k != "raw") {
			# per round against the raw run of the same round, then the median
			nr = 0; lo = 1e9; hi = 0
			for (r = 1; r <= n; r++) {
				raw = rawr[m, rnd[key, r]]; if (raw <= 0) continue
				nr++; q[nr] = rps[key, r] / raw; o[nr] = 1e6 / rps[key, r] - 1e6 / raw; c[nr] = rawc[m, rnd[key, r]] / cpu[key, r]
				if (q[nr] < lo) lo = q[nr]; if (q[nr] > hi) hi = q[nr]
			}
			if (nr) { ratio = sprintf("%.2f (%.2f–%.2f)", median(q, nr), lo, hi); ov = sprintf("%.0f", median(o, nr)); cr = sprintf("%.2f", median(c, nr)) } else ratio = cr = "–"
		}
		printf "| %s | %s | %.0f | %s | %s | %.2f | %.1f | %s |\n", m, k, med(rps, key), ratio, ov, med(cores, key), med(cpu, key), cr
	}
}' "$RES"
