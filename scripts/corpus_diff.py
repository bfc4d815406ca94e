#!/usr/bin/env python3
"""Shows, per document, the spans a corpus and `garim scan --json` disagree on (strict).

    python3 scripts/corpus_diff.py [--garim BIN] [--labels EMAIL,PHONE] CORPUS.jsonl...

Newlines inside a document are sent to `scan` as spaces (scan works line by line; the
code-point offsets stay the same), so multi-line matches such as PEM blocks may differ from
`garim eval`. A diagnostic aid: `garim eval` is the measure.
"""
import argparse
import json
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--garim", default="target/debug/garim")
    ap.add_argument("--labels", default="")
    ap.add_argument("corpora", nargs="+")
    a = ap.parse_args()
    want = set(a.labels.split(",")) if a.labels else None
    docs = []
    for path in a.corpora:
        with open(path, encoding="utf-8") as f:
            docs += [json.loads(line) for line in f if line.strip()]
    inp = "\n".join(d["text"].replace("\n", " ").replace("\r", " ") for d in docs) + "\n"
    out = subprocess.run([a.garim, "scan", "--json", "-"], input=inp.encode(), capture_output=True, check=True)
    preds = [json.loads(l)["spans"] for l in out.stdout.decode().splitlines()]
    assert len(preds) == len(docs)
    for d, p in zip(docs, preds):
        gold = {(s["start"], s["end"], s["label"]) for s in d["spans"]}
        pred = {(s["start"], s["end"], s["label"]) for s in p}
        t = d["text"]
        for kind, spans in (("FN", gold - pred), ("FP", pred - gold)):
            for s, e, l in sorted(spans):
                if want and l not in want:
                    continue
                print(f"{kind} {d.get('id', '?')} {l:<12} {t[s:e]!r}  …{t[max(0, s - 20):s]!r}")


if __name__ == "__main__":
    main()
