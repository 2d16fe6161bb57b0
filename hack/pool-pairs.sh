#!/usr/bin/env bash
# Pools the pairs that `PAIRED=1 PAIRS_FILE=f hack/bench-modelserver.sh`
# appended to f (any number of runs): per (model, kind) the median server /
# raw ratio, its distribution-free 95 % confidence interval (order
# statistics of Binomial(n, ½)), the quartiles and the pairs at or above 0.9.
#
#   hack/pool-pairs.sh /tmp/pairs.txt
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: hack/pool-pairs.sh PAIRS_FILE..." >&2; exit 2; }
cat "$@" | sort -k1,1 -k2,2 -k4,4g | awk '
function binomcdf(k, n,   i, p, s) { p = 0.5 ^ n; s = p; for (i = 1; i <= k; i++) { p = p * (n - i + 1) / i; s += p }; return s }
function q(a, n, f,   p, i) { p = f * (n - 1) + 1; i = int(p); return (i >= n) ? a[n] : a[i] + (p - i) * (a[i + 1] - a[i]) }
function flush(   k, lo, hi, ge, i) {
	if (!n) return
	k = 0; while (k + 1 <= int(n / 2) && binomcdf(k, n) <= 0.025) k++
	lo = (k == 0) ? r[1] : r[k]; hi = (k == 0) ? r[n] : r[n - k + 1]
	ge = 0; for (i = 1; i <= n; i++) if (r[i] >= 0.9) ge++
	printf "| %s | %s | %d | **%.3f** | %.3f–%.3f | %.3f–%.3f | %d/%d |\n", m, kd, n, q(r, n, 0.5), lo, hi, q(r, n, 0.25), q(r, n, 0.75), ge, n
	n = 0
}
BEGIN { print "| model | kind | pairs | server / raw, median | 95 % CI | quartiles | pairs ≥ 0.9 |"; print "|---|---|---:|---:|---:|---:|---:|" }
$1 != m || $2 != kd { flush(); m = $1; kd = $2 }
{ r[++n] = $4 }
END { flush() }'
