#!/usr/bin/env bash
# False-positive rate of the pattern rules on ordinary text with no planted PII.
#
#   scripts/fp_rate.sh                 # builds garim (release) unless GARIM_BIN is set
#   GARIM_BIN=path/to/garim FP_EXAMPLES=5 scripts/fp_rate.sh
#
# Writes >= 10 MB to target/fp-text/:
#   rust_src.txt  ~6.5 MB of Rust source from ~/.cargo/registry/src (sorted paths, files
#                 < 200 KB, deterministic for a given registry cache)
#   logs.txt      ~2 MB of generated log lines (timestamps, request ids, latencies, UUIDs,
#                 hex hashes, paths, versions, sizes; seeded)
#   ko_klue.txt   the Korean sentences of ko_klue_unlabeled.txt (~2.8 MB)
# runs `garim scan --json` on each, and prints findings per MB (10^6 bytes) per label and per
# source. Every finding counts: the sources were not screened, so a real address inside a
# crate's source counts too (FP_EXAMPLES=N prints N findings per label and source to judge).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/fp-text
mkdir -p "$OUT"
DATA=${DATA:-}
if [ -z "$DATA" ]; then
  for d in ../shared/data/ner /work/shared/data/ner; do
    if [ -f "$d/ko_klue_unlabeled.txt" ]; then DATA=$d; break; fi
  done
fi
REGISTRY=${REGISTRY:-$HOME/.cargo/registry/src}

python3 - "$OUT" "$DATA" "$REGISTRY" <<'EOF'
import glob, os, random, sys, uuid
out, data, registry = sys.argv[1:4]

# Rust source.
files = sorted(p for p in glob.glob(os.path.join(registry, "*", "*", "**", "*.rs"), recursive=True)
               if os.path.getsize(p) < 200_000)
n = 0
with open(os.path.join(out, "rust_src.txt"), "w", encoding="utf-8") as f:
    for p in files:
        try:
            t = open(p, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        f.write(t if t.endswith("\n") else t + "\n")
        n += len(t.encode("utf-8"))
        if n >= 6_500_000:
            break

# Generated logs.
R = random.Random(7)
def hexs(k): return "".join(R.choice("0123456789abcdef") for _ in range(k))
paths = ["/api/v1/orders", "/api/v2/users/{id}/profile", "/healthz", "/static/js/app.{h}.js",
         "/var/log/nginx/access.log", "/srv/data/exports/{d}/part-{n}.parquet", "/metrics"]
levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
svcs = ["api", "worker", "billing", "auth", "search", "ingest"]
n = 0
with open(os.path.join(out, "logs.txt"), "w", encoding="utf-8") as f:
    ts = 1_710_000_000.0
    while n < 2_000_000:
        ts += R.expovariate(20)
        sec = int(ts)
        import time
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{int((ts - sec) * 1000):03d}Z"
        p = R.choice(paths).format(id=R.randint(1, 10**6), h=hexs(8), d=time.strftime("%Y/%m/%d", time.gmtime(sec)), n=R.randint(0, 999))
        kind = R.random()
        if kind < 0.4:
            line = (f"{stamp} {R.choice(levels)} {R.choice(svcs)} req={uuid.UUID(int=R.getrandbits(128))} "
                    f"method={R.choice(['GET', 'POST', 'PUT'])} path={p} status={R.choice([200, 200, 201, 204, 304, 400, 404, 500])} "
                    f"latency={R.uniform(0.2, 900):.1f}ms bytes={R.randint(0, 10**6)}")
        elif kind < 0.6:
            line = (f"{stamp} {R.choice(levels)} deploy commit={hexs(40)} image=sha256:{hexs(64)} "
                    f"version={R.randint(0, 9)}.{R.randint(0, 40)}.{R.randint(0, 300)} build={R.randint(10000, 99999)}")
        elif kind < 0.75:
            line = (f"{stamp} {R.choice(levels)} {R.choice(svcs)} trace_id={hexs(32)} span_id={hexs(16)} "
                    f"duration_ns={R.randint(10**3, 10**10)} retries={R.randint(0, 5)} queue_depth={R.randint(0, 5000)}")
        elif kind < 0.9:
            line = (f"[{time.strftime('%d/%b/%Y:%H:%M:%S +0000', time.gmtime(sec))}] job {R.randint(1, 99999)} "
                    f"processed {R.randint(0, 10**7):,} rows in {R.uniform(0.01, 600):.3f}s, checksum {hexs(8)}-{hexs(4)}, "
                    f"mem {R.uniform(10, 4096):.1f}MiB, pid {R.randint(100, 65535)}")
        else:
            line = (f"{stamp} {R.choice(levels)} gc pause={R.uniform(0.01, 50):.2f}ms heap={R.randint(10, 8192)}MB "
                    f"objects={R.randint(10**4, 10**8)} epoch={sec} seq={R.randint(0, 2**32)} file={p}:{R.randint(1, 9999)}")
        f.write(line + "\n")
        n += len(line) + 1

# Korean sentences.
src = os.path.join(data, "ko_klue_unlabeled.txt")
with open(src, encoding="utf-8") as i, open(os.path.join(out, "ko_klue.txt"), "w", encoding="utf-8") as o:
    o.write(i.read())
EOF

if [ -z "${GARIM_BIN:-}" ]; then
  cargo build --release --bin garim
  GARIM_BIN="${CARGO_TARGET_DIR:-target}/release/garim"
fi
for s in rust_src logs ko_klue; do
  "$GARIM_BIN" scan --json "$OUT/$s.txt" > "$OUT/$s.findings.jsonl"
done

python3 - "$OUT" "${FP_EXAMPLES:-0}" <<'EOF'
import collections, json, os, sys
out, examples = sys.argv[1], int(sys.argv[2])
PATTERN = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "NATIONAL_ID", "BUSINESS_ID", "SECRET"]
sources = ["rust_src", "logs", "ko_klue"]
counts, sizes, subtypes, shown = {}, {}, collections.Counter(), collections.Counter()
for s in sources:
    text_path = os.path.join(out, s + ".txt")
    sizes[s] = os.path.getsize(text_path)
    c = collections.Counter()
    with open(text_path, encoding="utf-8", newline="\n") as t, open(os.path.join(out, s + ".findings.jsonl")) as f:
        for line, res in zip(t, f):
            for sp in json.loads(res)["spans"]:
                c[sp["label"]] += 1
                subtypes[(sp["label"], sp.get("subtype") or "-", sp["detector"])] += 1
                key = (s, sp["label"])
                if shown[key] < examples:
                    shown[key] += 1
                    print(f"  example {s} {sp['label']} {sp['detector']}: {line[sp['start']:sp['end']]!r}")
    counts[s] = c
labels = sorted({l for c in counts.values() for l in c} | set(PATTERN), key=lambda l: (l not in PATTERN, l))
total_mb = sum(sizes.values()) / 1e6
print(f"findings per MB (10^6 bytes); {total_mb:.2f} MB in all: " + ", ".join(f"{s} {sizes[s] / 1e6:.2f} MB" for s in sources))
print(f"{'label':<14}" + "".join(f"{s:>12}" for s in sources) + f"{'all':>12}{'count':>8}")
for l in labels:
    row = [counts[s][l] / (sizes[s] / 1e6) for s in sources]
    n = sum(counts[s][l] for s in sources)
    mark = "" if l in PATTERN else "  (not a pattern label)"
    print(f"{l:<14}" + "".join(f"{x:>12.3f}" for x in row) + f"{n / total_mb:>12.3f}{n:>8}{mark}")
pat = [sum(counts[s][l] for l in PATTERN) for s in sources]
print(f"{'PATTERN total':<14}" + "".join(f"{p / (sizes[s] / 1e6):>12.3f}" for p, s in zip(pat, sources)) + f"{sum(pat) / total_mb:>12.3f}{sum(pat):>8}")
print("target: <= 1 finding per MB per pattern label")
print("by rule:")
for (l, st, det), n in subtypes.most_common():
    print(f"  {n:>6}  {l:<12} {st:<20} {det}")
EOF
