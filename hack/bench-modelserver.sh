#!/usr/bin/env bash
# Model server throughput vs raw ONNX Runtime throughput, same model, one
# worker with one ORT thread, measured in the same run (interleaved per
# model, repeated COUNT times; medians reported). Prints a markdown table
# for docs/benchmarks.md ("Model server").
#
#   hack/bench-modelserver.sh [COUNT] [BENCHTIME]
#
# Needs the ONNX Runtime library (make onnxruntime).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-3}"
BENCHTIME="${2:-2s}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
go test -run '^$' -bench 'BenchmarkThroughput' -benchtime "$BENCHTIME" -count "$COUNT" ./pkg/modelserver | tee "$out" >&2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
awk '
/^BenchmarkThroughput\// {
	split($1, p, "/"); model = p[2]; kind = p[3]; sub(/-[0-9]+$/, "", kind)
	for (i = 1; i <= NF; i++) if ($(i+1) == "req/s") v = $i
	n = ++cnt[model, kind]; val[model, kind, n] = v; models[model] = 1
}
function median(model, kind,   n, i, j, a, t) {
	n = cnt[model, kind]
	for (i = 1; i <= n; i++) a[i] = val[model, kind, i]
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
	print "| model | raw ORT req/s | server req/s | server / raw |"
	print "|---|---:|---:|---:|"
	for (m in models) {
		r = median(m, "raw"); h = median(m, "http")
		printf "| %s | %.0f | %.0f | %.2f |\n", m, r, h, h / r
	}
}' "$out" | sort
