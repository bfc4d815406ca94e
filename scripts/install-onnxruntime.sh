#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that garim's NER detectors load at run time
# (the `ort` crate is built with `load-dynamic`: nothing is downloaded at build time).
#
# Source: the `onnxruntime` wheel on PyPI, which ships libonnxruntime.so.VERSION. Works on a
# fresh machine that reaches only PyPI. Idempotent: a second run only prints the path.
#
# Result: ./.ort/lib/libonnxruntime.so.$ORT_VERSION (printed on stdout, last line).
# Use it with:  export GARIM_ORT_DYLIB="$(scripts/install-onnxruntime.sh | tail -n1)"
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION="${ORT_VERSION:-1.31.1}"
root="$PWD/.ort"
lib="$root/lib/libonnxruntime.so.$ORT_VERSION"
if [ -s "$lib" ]; then
    echo "$lib"
    exit 0
fi
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64 | Linux-aarch64) ;;
    *) echo "install-onnxruntime.sh: only Linux x86_64/aarch64 wheels are handled; set GARIM_ORT_DYLIB to your libonnxruntime by hand" >&2; exit 1 ;;
esac
py="${PYTHON:-}"
if [ -z "$py" ]; then
    for c in python3 python; do
        if command -v "$c" >/dev/null 2>&1; then py="$c"; break; fi
    done
fi
[ -n "$py" ] || { echo "install-onnxruntime.sh: needs python3 with pip" >&2; exit 1; }
cache="$root/cache"
mkdir -p "$cache" "$root/lib"
wheel="$(ls "$cache"/onnxruntime-"$ORT_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$wheel" ]; then
    # The wheel matching this interpreter's platform tag; --no-deps: only the library is needed.
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
        --dest "$cache" "onnxruntime==$ORT_VERSION" >&2
    wheel="$(ls "$cache"/onnxruntime-"$ORT_VERSION"-*.whl | head -n1)"
fi
tmp="$(mktemp -d "$root/unpack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$py" - "$wheel" "$tmp" "$ORT_VERSION" <<'PY'
import sys, zipfile
wheel, dest, ver = sys.argv[1:4]
name = f"onnxruntime/capi/libonnxruntime.so.{ver}"
with zipfile.ZipFile(wheel) as z:
    z.extract(name, dest)
PY
src="$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
[ -s "$src" ] || { echo "install-onnxruntime.sh: $wheel has no libonnxruntime.so.$ORT_VERSION" >&2; exit 1; }
# Atomic: a concurrent run never sees a half-written library.
cp "$src" "$lib.tmp.$$"
mv -f "$lib.tmp.$$" "$lib"
echo "$lib"
