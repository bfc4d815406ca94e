"""Static int8 quantisation of the shipped NER models (the last step after training).

    .venv/bin/python models/scripts/quantize_ner.py ko   # models/build/ko/model.fp32.onnx -> models/ko-ner/model.onnx
    .venv/bin/python models/scripts/quantize_ner.py en   # models/build/en/model.fp32.onnx -> models/en-ner/model.onnx

The convolutions (and, for en-ner, the MatMuls) get int8 weights (per channel) and int8
activations with scales calibrated once on the first 300 training sentences (min/max), in
QDQ form: about half the time of fp32 on one core, the same dev-split F1. en-ner's embedding
table stays weight-only int8, as train_en.py exports it. Deterministic: the same inputs give
the same file.
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

import nerlib

ROOT = Path(__file__).resolve().parents[2]
SPECS = {
    "ko": dict(dir="models/ko-ner", ops=["Conv"], gather=False),
    "en": dict(dir="models/en-ner", ops=["Conv", "MatMul"], gather=True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lang", choices=sorted(SPECS))
    ap.add_argument("--fp32", help="the fp32 export (default models/build/LANG/model.fp32.onnx)")
    ap.add_argument("--calib", help="training sentences, JSONL (default models/build/data/LANG_train.jsonl)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--out", help="model directory with tokenizer.json to write model.onnx into "
                                  "(default the shipped models/LANG-ner)")
    a = ap.parse_args()
    spec = SPECS[a.lang]
    fp32 = Path(a.fp32 or ROOT / f"models/build/{a.lang}/model.fp32.onnx")
    calib = Path(a.calib or ROOT / f"models/build/data/{a.lang}_train.jsonl")
    out = Path(a.out) if a.out else ROOT / spec["dir"]
    texts = [json.loads(l)["text"] for l in open(calib, encoding="utf-8")][: a.n]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.onnx"
        if spec["gather"]:
            nerlib.quantize(fp32, src, ["Gather"])
        else:
            shutil.copyfile(fp32, src)
        nerlib.quantize_static(src, Path(tmp) / "model.onnx", out / "tokenizer.json", texts, spec["ops"])
        shutil.copyfile(Path(tmp) / "model.onnx", out / "model.onnx")
    print(f"wrote {out / 'model.onnx'} ({(out / 'model.onnx').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
