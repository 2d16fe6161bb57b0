#!/usr/bin/env bash
# Installs the ONNX Runtime shared library (libonnxruntime.so.1, linux-x64)
# that `infadapter serve-model` loads through github.com/yalue/onnxruntime_go.
#
# The library comes from the npm package onnxruntime-node at a pinned version.
# We `npm pack` the tarball and unpack only the .so: a plain `npm install`
# runs the package's postinstall script, which tries to download CUDA
# binaries from NuGet and fails offline.
#
# Result: $ORT_CACHE_DIR/libonnxruntime.so.1 (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/infadapter/onnxruntime/<version>/).
# Idempotent: a stamp file records a completed install; re-running is a no-op.
#
# Env: ORT_VERSION (default 1.30.0), ORT_CACHE_DIR (overrides the directory).
# Needs: npm, tar. Network: the npm registry only.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.30.0}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}"
DEST="${ORT_CACHE_DIR:-$CACHE_ROOT/infadapter/onnxruntime/$ORT_VERSION}"
STAMP="$DEST/.installed"
LIB="$DEST/libonnxruntime.so.1"

if [[ -f "$STAMP" && -f "$LIB" ]]; then
	echo "onnxruntime $ORT_VERSION already installed: $LIB"
	exit 0
fi

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) ;;
*)
	echo "install-onnxruntime.sh: only linux/x86_64 is supported (got $(uname -s)/$(uname -m))" >&2
	exit 1
	;;
esac
command -v npm >/dev/null || { echo "install-onnxruntime.sh: npm not found (apt-get install -y npm)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetching onnxruntime-node@$ORT_VERSION from the npm registry (≈113 MB)..." >&2
(cd "$tmp" && npm pack "onnxruntime-node@$ORT_VERSION" --silent >/dev/null)
tgz="$(ls "$tmp"/onnxruntime-node-*.tgz)"
# The .so sits at package/bin/napi-v<N>/linux/x64/libonnxruntime.so.1[.x.y.z];
# the napi version differs between releases, so find it by listing.
member="$(tar -tzf "$tgz" | grep -E '^package/bin/napi-v[0-9]+/linux/x64/libonnxruntime\.so\.1(\.[0-9.]+)?$' | head -n1 || true)"
if [[ -z "$member" ]]; then
	echo "install-onnxruntime.sh: no linux/x64 libonnxruntime.so.1 in onnxruntime-node@$ORT_VERSION" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp" "$member"
mkdir -p "$DEST"
install -m 0644 "$tmp/$member" "$LIB.tmp"
mv -f "$LIB.tmp" "$LIB"
# Licence travels with the binary (MIT, Microsoft).
if tar -xzf "$tgz" -C "$tmp" package/LICENSE 2>/dev/null; then
	install -m 0644 "$tmp/package/LICENSE" "$DEST/LICENSE"
fi
printf 'onnxruntime-node@%s %s\n' "$ORT_VERSION" "$member" >"$STAMP"
echo "installed $LIB"
