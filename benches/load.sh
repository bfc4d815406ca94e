#!/usr/bin/env bash
# Load test: p50/p99 added latency, errors and RSS of the real `garim` binary at a fixed rate,
# against a direct call to the same upstream in the same run (the baseline).
#
#   benches/load.sh [RATE] [REQUESTS]      (defaults: 1000 requests/s, 50000 requests)
#   NER=off benches/load.sh ...            (the rules only: [detect.ner] enabled = false)
#   MAX_IN_FLIGHT=16 benches/load.sh ...   ([detect] max_in_flight = 16: load shedding)
#
# With the embedded default the NER models run on every request: a 2 KB request costs a few
# ms of CPU per core, so this 2-core machine sustains on the order of a hundred such requests
# per second; beyond, requests queue and then fail closed (503). Pick RATE accordingly.
#
# Needs `oha` (cargo install oha --locked; the script installs it if missing). Starts the
# benchmark upstream (benches/mock_upstream.rs) and garim on loopback ports picked by the
# kernel, sends the same 2 KB chat request with five findings (benches/common/mock_upstream.rs,
# chat_request_2kb) to both, and prints one table. Everything is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}
N=${2:-50000}
CONNS=${CONNS:-32}
command -v oha >/dev/null || cargo install oha --locked
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --bin garim >&2
MOCK=$(cargo build --release --bench mock_upstream --message-format=json 2>/dev/null |
  python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="mock_upstream" and m.get("executable"): print(m["executable"])')
GARIM=$CARGO_TARGET_DIR/release/garim
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_line() { # file -> address from "listening on ADDR"
  for _ in $(seq 100); do
    a=$(sed -n 's/^listening on //p' "$1" 2>/dev/null | head -1)
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.1
  done
  echo "no 'listening on' line in $1" >&2; exit 1
}

GARIM_MOCK_LISTEN=127.0.0.1:0 "$MOCK" >"$work/mock.out" 2>&1 & pids+=($!)
UP=$(wait_line "$work/mock.out")
cfg=()
if [ "${NER:-on}" = off ] || [ -n "${MAX_IN_FLIGHT:-}" ]; then
  : >"$work/garim.toml"
  printf '[detect]\n' >>"$work/garim.toml"
  [ -n "${MAX_IN_FLIGHT:-}" ] && printf 'max_in_flight = %d\n' "$MAX_IN_FLIGHT" >>"$work/garim.toml"
  [ "${NER:-on}" = off ] && printf '[detect.ner]\nenabled = false\n' >>"$work/garim.toml"
  cfg=(--config "$work/garim.toml")
fi
export GARIM_ORT_DYLIB=${GARIM_ORT_DYLIB:-$(scripts/install-onnxruntime.sh | tail -n1)}
"$GARIM" serve "${cfg[@]}" --listen 127.0.0.1:0 --route "/openai=http://$UP" --audit "$work/audit.jsonl" \
  >"$work/garim.out" 2>"$work/garim.err" & GPID=$!; pids+=($GPID)
GW=$(wait_line "$work/garim.out")

# The same body as chat_request_2kb(false) in benches/common/mock_upstream.rs.
python3 - "$work/body.json" <<'PY'
import json, sys
filler = "Please summarise the quarterly report and list the open action items for the team. "
text = ""
while len(text.encode()) < 1700:
    text += filler
text += "Contact kim.minsu@example.com, card 4111 1111 1111 1111, 주민번호 900101-1234568, call 010-2345-6789, server 10.1.2.3."
body = {"model": "bench", "stream": False, "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": text}]}
open(sys.argv[1], "w").write(json.dumps(body, ensure_ascii=False))
PY

rss() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }
IDLE_RSS=$(rss "$GPID" VmRSS)

# Check once that the gateway really masks and restores, or the figures mean nothing.
out=$(curl -s "http://$GW/openai/v1/chat/completions" -H 'content-type: application/json' -H 'authorization: Bearer load' --data-binary @"$work/body.json")
echo "$out" | grep -q 'kim.minsu@example.com' || { echo "gateway did not restore: $out" >&2; exit 1; }

run() { # name url
  oha -n "$N" -q "$RATE" -c "$CONNS" --latency-correction --no-tui --output-format json \
    -m POST -H 'content-type: application/json' -H 'authorization: Bearer load' \
    -D "$work/body.json" "$2" >"$work/$1.json"
}
warm() { oha -n 2000 -q "$RATE" -c "$CONNS" --no-tui --output-format quiet -m POST \
    -H 'content-type: application/json' -D "$work/body.json" "$1" >/dev/null; }
warm "http://$UP/v1/chat/completions"
warm "http://$GW/openai/v1/chat/completions"
run direct "http://$UP/v1/chat/completions"
run garim "http://$GW/openai/v1/chat/completions"
PEAK_RSS=$(rss "$GPID" VmHWM)
AUDIT_LINES=$(wc -l <"$work/audit.jsonl")

python3 - "$work" "$RATE" "$N" "$IDLE_RSS" "$PEAK_RSS" "$AUDIT_LINES" <<'PY'
import json, sys
work, rate, n, idle, peak, audit = sys.argv[1:]
def load(name):
    d = json.load(open(f"{work}/{name}.json"))
    s = d["summary"]; p = d["latencyPercentiles"]
    codes = d.get("statusCodeDistribution", {})
    shed = codes.get("503", 0)
    errors = sum(d.get("errorDistribution", {}).values()) + sum(v for k, v in codes.items() if k != "200")
    return {"rps": s["requestsPerSec"], "p50": p["p50"] * 1e3, "p99": p["p99"] * 1e3,
            "p999": p.get("p99.9", 0) * 1e3, "ok": codes.get("200", 0), "errors": errors,
            "shed": shed}
d, g = load("direct"), load("garim")
print(f"load: {n} requests at {rate}/s, 2 KB chat request with 5 findings")
print(f"{'':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'200s':>7} {'errors':>6} {'(503s)':>6}")
for name, r in (("direct", d), ("garim", g)):
    print(f"{name:8} {r['rps']:8.0f} {r['p50']:8.3f} {r['p99']:8.3f} {r['p999']:9.3f} {r['ok']:7d} {r['errors']:6d} {r['shed']:6d}")
print(f"added latency: p50 {g['p50'] - d['p50']:.3f} ms, p99 {g['p99'] - d['p99']:.3f} ms")
print(f"garim RSS: idle {int(idle) / 1024:.1f} MiB, peak under load {int(peak) / 1024:.1f} MiB")
print(f"audit lines written: {audit}")
PY
