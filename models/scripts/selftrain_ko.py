"""A second round of self-training for ko-ner, with the shipped model as the teacher.

    .venv/bin/python models/scripts/selftrain_ko.py --out /tmp/ko-ner-r2

The shipped model (models/ko-ner, int8, with its `hangul_word_start` span snapping) labels the
unlabelled KLUE sentences; those it is confident about (every token's top probability >= 0.9)
join gold + name-substituted copies + synthetic text, and the round-1 model
(models/build/ko/round1.pt, from train_ko.py) is fine-tuned on them. Same seed, same dev split
as train_ko.py; the best dev epoch is exported (fp32 to --work/model.fp32.onnx; quantize with
`quantize_ner.py ko --fp32 models/build/ko-r2/model.fp32.onnx`). Run it after train_ko.py
and `quantize_ner.py ko` (the teacher); see models/README.md.
"""
import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nerlib  # noqa: E402
import train_ko as ko  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def is_syl(c):
    return "\uac00" <= c <= "\ud7a3"


def snap_start(text, s):
    """The `hangul_word_start` rule of the Rust runtime, in code points."""
    if s < len(text) and is_syl(text[s]):
        while s > 0 and is_syl(text[s - 1]):
            s -= 1
    return s


def teacher_labels(model_dir, tok, texts, min_conf):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), so, providers=["CPUExecutionProvider"])
    docs = []
    for t in texts:
        ids, offs = ko.encode(tok, t)
        if not ids or len(ids) > ko.MAX_LEN - 2:
            continue
        x = np.array([[2] + ids + [3]], dtype=np.int64)
        logits = sess.run(None, {"input_ids": x, "attention_mask": np.ones_like(x)})[0][0][1:-1]
        e = np.exp(logits - logits.max(-1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
        if p.max(-1).min() < min_conf:
            continue
        spans = {(snap_start(t, s), e_, l) for s, e_, l in nerlib.decode(p, offs, [True] * len(ids))}
        docs.append({"id": "self2", "text": t,
                     "spans": [{"start": s, "end": e_, "label": l} for s, e_, l in sorted(spans)]})
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "models/build/data"))
    ap.add_argument("--unlabeled", default=str(ROOT.parent / "shared/data/ner/ko_klue_unlabeled.txt"))
    ap.add_argument("--teacher", default=str(ROOT / "models/ko-ner"))
    ap.add_argument("--init", default=str(ROOT / "models/build/ko/round1.pt"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default=str(ROOT / "models/build/ko-r2"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--swap-mentions", action="store_true", help="as in train_ko.py")
    ap.add_argument("--average-last", type=int, default=0,
                    help="also try the mean of the last N epochs' weights; keep it if better on dev")
    a = ap.parse_args()
    out, work, rng, log = nerlib.start_run(a, ko.SEED)
    data = Path(a.data)
    gold = nerlib.load_jsonl(data / "ko_train.jsonl")
    synth = nerlib.load_jsonl(data / "ko_synth.jsonl")[:4000]
    unlabeled = [l.strip() for l in open(a.unlabeled, encoding="utf-8") if l.strip()]
    rng.shuffle(gold)
    ndev = len(gold) // 10
    dev_docs, train_gold = gold[:ndev], gold[ndev:]
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(Path(a.teacher) / "tokenizer.json"))
    (out / "tokenizer.json").write_bytes((Path(a.teacher) / "tokenizer.json").read_bytes())
    pseudo = teacher_labels(Path(a.teacher), tok, unlabeled, 0.9)
    log(f"teacher kept {len(pseudo)} of {len(unlabeled)} unlabelled sentences")
    aug = ko.substitute_names(train_gold, rng, 2, a.swap_mentions)
    train = ko.featurize(tok, train_gold + aug + synth + pseudo)
    dev = ko.featurize(tok, dev_docs)
    model = ko.Tagger(ko.Encoder(tok.get_vocab_size(), 160), 160, len(nerlib.LABELS))
    model.load_state_dict(torch.load(a.init))
    log(f"round-1 model on dev: {ko.evaluate(model, dev, dev_docs)}")
    best = ko.finetune(model, train, dev, dev_docs, a.epochs, rng, log, average_last=a.average_last)
    log(f"second self-training round: best dev mean F1 {best:.4f}")
    ko.export(model, work, out, dev, dev_docs, log)


if __name__ == "__main__":
    main()
