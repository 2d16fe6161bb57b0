#!/bin/bash
# Install what InfAdapter needs on a Debian 12 machine. Idempotent and quick
# when everything is already there (no apt-get update unless a package is
# missing; the ONNX Runtime and control-plane builds are cached by stamp).
#
#   hack/setup.sh local   what `infadapter run` needs: the Fashion-MNIST data
#                         set (apt) and the ONNX Runtime library (npm package)
#   hack/setup.sh test    everything the tests need: every package in
#                         hack/apt-packages.txt, ONNX Runtime, and the e2e
#                         control-plane binaries (hack/testbin, hack/knbin;
#                         ~20-25 min once per machine, then cached)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-local}
case "$mode" in
  local) pkgs="dataset-fashion-mnist" ;;
  test) pkgs=$(grep -v -E '^\s*(#|$)' hack/apt-packages.txt | tr '\n' ' ') ;;
  *) echo "usage: hack/setup.sh local|test" >&2; exit 2 ;;
esac
command -v npm >/dev/null || pkgs="$pkgs npm"

missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

hack/install-onnxruntime.sh

if [ "$mode" = test ]; then
  hack/testbin/build.sh
  hack/knbin/build.sh
fi
