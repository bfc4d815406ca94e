"""Trains garim's Korean NER model (models/ko-ner) from scratch on characters.

What: a character-level encoder (embedding -> 6 residual dilated convolutions, receptive field
31 characters -> BIO classifier over PER/LOC/ORG), in four steps, all with fixed seeds:
  1. tokenizer: one token per non-space character, one per whitespace run (HF tokenizer.json,
     WordLevel over the characters of ko_klue_unlabeled.txt and the training text);
  2. masked-language-model pretraining on the 21k unlabelled KLUE sentences + training text;
  3. NER fine-tuning on the KLUE training part (each sentence also copied with its PERSON
     spans replaced by Faker ko_KR names) + synthetic business sentences (ner_data.py);
  4. self-training: the fine-tuned model labels the unlabelled sentences, the confident
     ones join the gold data, and the model is fine-tuned again from the pretrained encoder.
Then ONNX export (inputs input_ids, attention_mask; output logits; fp32: the model is 3 MB and
int8 would make findings depend on batch companions, see export()), a check that the ONNX
model agrees with PyTorch, and the manifest.

Why from scratch: no Korean pretrained encoder is available offline (see ../shared/NOTES.md).
Why convolutions: the latency budget (2 KB in 15 ms on one core) leaves ~0.5 M multiply-adds
per character; a transformer layer of useful width costs more than that. Masked convolutions make a text's output independent of how it is padded in
a batch (garim micro-batches texts of different lengths together).

Limits: trained on ~2.4k gold sentences; no world knowledge beyond what 21k sentences teach.
Run: .venv/bin/python models/scripts/train_ko.py  (after ner_data.py; CPU, ~30 min on 2 cores)
"""

import argparse
import math
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import nerlib  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED = 1123
MAX_LEN = 256


# --- tokenizer ------------------------------------------------------------------------------

def build_tokenizer(texts, out_path):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    counts = Counter()
    for t in texts:
        counts.update(c for c in t if not c.isspace())
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, " ": 5, "\n": 6}
    for c, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
        if n >= 2 and c not in vocab:
            vocab[c] = len(vocab)
    # Printable ASCII always has an id, seen or not.
    for o in range(33, 127):
        vocab.setdefault(chr(o), len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = whitespace_normalizer()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s+|\S"), behavior="isolated")
    tok.save(str(out_path))
    return Tokenizer.from_file(str(out_path))


def whitespace_normalizer():
    """A whitespace run with a line break becomes "\n", any other run " " (offsets kept)."""
    from tokenizers import Regex, normalizers

    return normalizers.Sequence([normalizers.Replace(Regex(r"\s*\n\s*"), "\n"),
                                 normalizers.Replace(Regex(r"[^\S\n]+"), " ")])


def encode(tok, text):
    enc = tok.encode(text, add_special_tokens=False)
    return list(enc.ids), enc.offsets


# --- model ----------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, d, heads, ff, drop):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)
        self.heads = heads
        self.drop = nn.Dropout(drop)

    def forward(self, x, bias):
        b, s, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).reshape(b, s, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // h) + bias
        att = self.drop(torch.softmax(att, dim=-1))
        y = torch.matmul(att, v).permute(0, 2, 1, 3).reshape(b, s, d)
        x = x + self.drop(self.out(y))
        x = x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)))))
        return x


class Conv(nn.Module):
    def __init__(self, d, k, drop, dilation=1):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.conv = nn.Conv1d(d, d, k, padding=dilation * (k // 2), dilation=dilation)
        self.drop = nn.Dropout(drop)

    def forward(self, x, m):
        y = self.conv(self.ln(x).mul(m).transpose(1, 2)).transpose(1, 2)
        return x + self.drop(F.gelu(y))


class Encoder(nn.Module):
    """Embedding -> residual dilated convolutions (-> optional transformer layers).

    Every block's output is multiplied by the attention mask, so padding positions stay zero
    exactly like the convolutions' own zero padding at the edges: a text's logits do not
    depend on how much padding its batch has.
    """

    def __init__(self, vocab, d=160, dilations=(1, 2, 4, 8, 1, 2), layers=0, heads=4, drop=0.1, gru=False):
        super().__init__()
        # A bidirectional GRU after the convolutions gives every character the whole window as
        # context. Without biases, a zero input on a zero state stays exactly zero, so padding
        # (zeroed by the mask) leaves the backward direction's state at zero until the last
        # real character: a text's output still does not depend on its batch's padding.
        self.gru = nn.GRU(d, d // 2, batch_first=True, bidirectional=True, bias=False) if gru else None
        self.emb = nn.Embedding(vocab, d)
        nn.init.normal_(self.emb.weight, std=0.02)  # tied with the MLM head: keep logits small
        self.pos = nn.Embedding(MAX_LEN + 2, d) if layers else None
        self.convs = nn.ModuleList([Conv(d, 3, drop, dil) for dil in dilations])
        self.blocks = nn.ModuleList([Block(d, heads, 4 * d, drop) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(drop)

    def forward(self, ids, mask):
        m = mask.unsqueeze(-1).to(torch.float32)
        x = self.emb(ids)
        if self.pos is not None:
            x = x + self.pos(torch.arange(ids.shape[1], device=ids.device).unsqueeze(0))
        x = self.drop(x) * m
        for c in self.convs:
            x = c(x, m) * m
        if self.gru is not None:
            x = (x + self.drop(self.gru(x)[0])) * m
        if len(self.blocks):
            bias = (1.0 - mask.to(torch.float32))[:, None, None, :] * -1e4
            for b in self.blocks:
                x = b(x, bias)
        return self.ln(x)


class Tagger(nn.Module):
    def __init__(self, enc, d, n):
        super().__init__()
        self.enc = enc
        self.head = nn.Linear(d, n)

    def forward(self, input_ids, attention_mask):
        return self.head(self.enc(input_ids, attention_mask))


# --- data -----------------------------------------------------------------------------------

def featurize(tok, docs):
    out = []
    for d in docs:
        ids, offs = encode(tok, d["text"])
        labs = nerlib.token_labels(offs, d["spans"], [True] * len(ids))
        # Whitespace is never an entity boundary token: O unless inside a span (I-).
        ids, offs, labs = ids[: MAX_LEN - 2], offs[: MAX_LEN - 2], labs[: MAX_LEN - 2]
        out.append((ids, offs, labs))
    return out


SPECIAL = {"cls": 2, "sep": 3}  # token ids; train_en.py sets its tokenizer's


def batches(items, bs, shuffle, rng):
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    groups = [order[i:i + bs] for i in range(0, len(order), bs)]
    if shuffle:
        rng.shuffle(groups)
    for g in groups:
        n = max(len(items[i][0]) for i in g) + 2
        ids = torch.zeros(len(g), n, dtype=torch.long)
        mask = torch.zeros(len(g), n, dtype=torch.long)
        labs = torch.full((len(g), n), -100, dtype=torch.long)
        for r, i in enumerate(g):
            x, y = items[i][0], items[i][2]
            ids[r, 0] = SPECIAL["cls"]
            ids[r, 1:len(x) + 1] = torch.tensor(x)
            ids[r, len(x) + 1] = SPECIAL["sep"]
            mask[r, :len(x) + 2] = 1
            if y is not None:
                labs[r, 1:len(x) + 1] = torch.tensor(y)
        yield g, ids, mask, labs


def substitute_names(docs, rng, copies, swap_mentions=False):
    """Copies of each doc with PERSON spans replaced by Faker ko_KR names (spans shifted).

    With `swap_mentions`, LOCATION and ORGANIZATION spans are also replaced (p = 0.8) by a
    mention of the same label drawn from `docs` (mention replacement: the context, not the
    memorised name, has to carry the label), and docs without PERSON spans are copied too."""
    from faker import Faker

    fk = Faker("ko_KR")
    fk.seed_instance(SEED)
    pool = nerlib.mention_pool(docs, ("LOCATION", "ORGANIZATION")) if swap_mentions else {}

    def pick(label, piece):
        if label == "PERSON" and len(piece) >= 2 and rng.random() < 0.8:
            return fk.name() if rng.random() < 0.7 else fk.last_name() + fk.first_name()[:1]
        if label in pool and rng.random() < 0.8:
            return rng.choice(pool[label])
        return None

    labels = ("PERSON", "LOCATION", "ORGANIZATION") if swap_mentions else ("PERSON",)
    chosen = [d for d in docs if any(s["label"] in labels for s in d["spans"])]
    return nerlib.replace_mentions(chosen, copies, pick)


# --- training -------------------------------------------------------------------------------

def pretrain(enc, d, vocab, items, epochs, rng, log):
    head = nn.Linear(d, vocab)
    head.weight = enc.emb.weight
    params = list(enc.parameters()) + [head.bias]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    steps = epochs * math.ceil(len(items) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    enc.train()
    for ep in range(epochs):
        tot, n, t0 = 0.0, 0, time.time()
        for _, ids, mask, _ in batches(items, 64, True, rng):
            inp, tgt = ids.clone(), torch.full_like(ids, -100)
            cand = (mask == 1) & (ids > 4)
            sel = cand & (torch.rand(ids.shape) < 0.15)
            tgt[sel] = ids[sel]
            r = torch.rand(ids.shape)
            inp[sel & (r < 0.8)] = 4
            rnd = sel & (r >= 0.8) & (r < 0.9)
            inp[rnd] = torch.randint(7, vocab, (int(rnd.sum()),))
            logits = head(enc(inp, mask))
            loss = F.cross_entropy(logits.reshape(-1, vocab), tgt.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            tot, n = tot + loss.item(), n + 1
        log(f"pretrain epoch {ep + 1}/{epochs}: loss {tot / n:.3f} ({time.time() - t0:.0f}s)")


def predict(model, items):
    model.eval()
    probs = [None] * len(items)
    with torch.no_grad():
        for g, ids, mask, _ in batches(items, 64, False, None):
            p = torch.softmax(model(ids, mask), -1).numpy()
            for r, i in enumerate(g):
                probs[i] = p[r, 1:len(items[i][0]) + 1]
    return probs


def evaluate(model, items, docs):
    probs = predict(model, items)
    preds = [set(nerlib.decode(p, it[1], first_pieces(it))) for p, it in zip(probs, items)]
    return nerlib.score(docs, preds)


def first_pieces(item):
    return item[3] if len(item) > 3 else [True] * len(item[0])


def finetune(model, train, dev, dev_docs, epochs, rng, log, lr=1e-3, groups=None, bs=32, sparse=None,
             average_last=0):
    opt = torch.optim.AdamW(groups or model.parameters(), lr=lr, weight_decay=0.01)
    # Sparse-gradient tables (a big pretrained embedding) get their own optimiser.
    sopt = torch.optim.SparseAdam(sparse[0], lr=sparse[1]) if sparse else None
    steps = epochs * math.ceil(len(train) / bs)
    max_lr = [g.get("lr", lr) for g in groups] if groups else lr
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps, pct_start=0.1)
    weight = torch.ones(len(nerlib.LABELS))
    weight[0] = 0.5
    best, best_state = -1.0, None
    recent = []
    for ep in range(epochs):
        model.train()
        tot, n, t0 = 0.0, 0, time.time()
        for _, ids, mask, labs in batches(train, bs, True, rng):
            logits = model(ids, mask)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labs.reshape(-1),
                                   ignore_index=-100, weight=weight)
            opt.zero_grad()
            if sopt:
                sopt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            if sopt:
                sopt.step()
            sched.step()
            tot, n = tot + loss.item(), n + 1
        res = evaluate(model, dev, dev_docs)
        f = sum(v[2] for v in res.values()) / 3
        log(f"finetune epoch {ep + 1}/{epochs}: loss {tot / n:.3f} dev {res} ({time.time() - t0:.0f}s)")
        if f > best:
            best, best_state = f, {k: v.clone() for k, v in model.state_dict().items()}
        if average_last:
            recent = (recent + [{k: v.clone() for k, v in model.state_dict().items()}])[-average_last:]
    if average_last and len(recent) == average_last:
        # The mean of the last epochs' weights (the learning rate is low by then): kept only
        # when it beats the best single epoch on the dev split.
        model.load_state_dict({k: sum(s[k] for s in recent) / len(recent) for k in recent[0]})
        res = evaluate(model, dev, dev_docs)
        f = sum(v[2] for v in res.values()) / 3
        log(f"mean of the last {average_last} epochs: dev {res} (mean F1 {f:.4f}, best epoch {best:.4f})")
        if f > best:
            return f
    model.load_state_dict(best_state)
    return best


def pseudo_label(model, tok, texts, min_conf):
    items = [(ids[: MAX_LEN - 2], offs[: MAX_LEN - 2], None) for ids, offs in (encode(tok, t) for t in texts)]
    probs = predict(model, items)
    docs = []
    for t, it, p in zip(texts, items, probs):
        if len(it[0]) == 0 or p.max(-1).min() < min_conf:
            continue
        spans = nerlib.decode(p, it[1], [True] * len(it[0]))
        docs.append({"id": "self", "text": t,
                     "spans": [{"start": s, "end": e, "label": l} for s, e, l in spans]})
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "models/build/data"))
    ap.add_argument("--unlabeled", default=str(ROOT.parent / "shared/data/ner/ko_klue_unlabeled.txt"))
    ap.add_argument("--out", default=str(ROOT / "models/ko-ner"))
    ap.add_argument("--work", default=str(ROOT / "models/build/ko"))
    ap.add_argument("--dim", type=int, default=160)
    ap.add_argument("--layers", type=int, default=0, help="transformer layers after the convolutions")
    ap.add_argument("--gru", action="store_true", help="a bias-free bidirectional GRU after the convolutions")
    ap.add_argument("--swap-mentions", action="store_true",
                    help="augmented copies also swap LOCATION/ORGANIZATION mentions between sentences")
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--self-epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--synth", type=int, default=4000, help="synthetic sentences used")
    ap.add_argument("--gold-repeat", type=int, default=1, help="copies of each gold sentence")
    ap.add_argument("--quick", action="store_true", help="tiny run to check the pipeline")
    a = ap.parse_args()
    out, work, rng, log = nerlib.start_run(a, SEED)

    data = Path(a.data)
    gold = nerlib.load_jsonl(data / "ko_train.jsonl")
    synth = nerlib.load_jsonl(data / "ko_synth.jsonl")
    unlabeled = [l.strip() for l in open(a.unlabeled, encoding="utf-8") if l.strip()]
    rng.shuffle(gold)
    ndev = len(gold) // 10
    dev_docs, train_gold = gold[:ndev], gold[ndev:]
    if a.quick:
        train_gold, synth, unlabeled, dev_docs = train_gold[:200], synth[:200], unlabeled[:500], dev_docs[:100]
        a.pretrain_epochs, a.epochs, a.self_epochs = 1, 2, 1

    tok = build_tokenizer(unlabeled + [d["text"] for d in train_gold + synth], out / "tokenizer.json")
    vocab = tok.get_vocab_size()
    log(f"vocab {vocab}; gold {len(train_gold)} dev {len(dev_docs)} synth {len(synth)} unlabeled {len(unlabeled)}")

    synth = synth[: a.synth]
    aug = substitute_names(train_gold, rng, 2, a.swap_mentions)
    train_docs = train_gold * a.gold_repeat + aug + synth
    train = featurize(tok, train_docs)
    dev = featurize(tok, dev_docs)

    enc = Encoder(vocab, a.dim, layers=a.layers, drop=a.dropout, gru=a.gru)
    pre_items = [(ids[: MAX_LEN - 2], None, None) for ids, _ in (encode(tok, t) for t in unlabeled + [d["text"] for d in train_gold])]
    pretrain(enc, a.dim, vocab, pre_items, a.pretrain_epochs, rng, log)
    pre_state = {k: v.clone() for k, v in enc.state_dict().items()}
    torch.save(pre_state, work / "pretrained.pt")

    model = Tagger(enc, a.dim, len(nerlib.LABELS))
    best = finetune(model, train, dev, dev_docs, a.epochs, rng, log)
    log(f"round 1 best dev mean F1 {best:.4f}")
    export(model, work, out, dev, dev_docs, log)
    torch.save(model.state_dict(), work / "round1.pt")

    if a.self_epochs > 0:
        pseudo = pseudo_label(model, tok, unlabeled, 0.9)
        log(f"self-training: {len(pseudo)} of {len(unlabeled)} unlabelled sentences kept")
        enc2 = Encoder(vocab, a.dim, layers=a.layers, drop=a.dropout, gru=a.gru)
        enc2.load_state_dict(pre_state)
        model2 = Tagger(enc2, a.dim, len(nerlib.LABELS))
        best2 = finetune(model2, train + featurize(tok, pseudo), dev, dev_docs, a.self_epochs, rng, log)
        log(f"round 2 best dev mean F1 {best2:.4f}")
        if best2 > best:
            export(model2, work, out, dev, dev_docs, log)


def export(model, work, out, dev, dev_docs, log, meta=None, quant_ops=None):
    import onnxruntime as ort

    model.eval()
    ids = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 13, 14, 15, 16, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    fp32 = work / "model.fp32.onnx"
    torch.onnx.export(model, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}})
    # Only weight-only quantisation is used (int8 embedding tables): dynamic int8 MatMuls
    # scale activations per tensor, i.e. over the whole batch, so a text's findings would
    # depend on the texts it is batched with (seen: a span flipping ORGANIZATION/LOCATION).
    if quant_ops:
        nerlib.quantize(fp32, out / "model.onnx", quant_ops)
    else:
        shutil.copyfile(fp32, out / "model.onnx")
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    preds = []
    agree = total = 0
    with torch.no_grad():
        for g, ids, mask, _ in batches(dev, 32, False, None):
            q = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
            t = model(ids, mask).numpy()
            m = mask.numpy().astype(bool)
            agree += int((q.argmax(-1) == t.argmax(-1))[m].sum())
            total += int(m.sum())
    probs = []
    for g, ids, mask, _ in batches(dev, 32, False, None):
        q = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        for r, i in enumerate(g):
            probs.append((i, q[r, 1:len(dev[i][0]) + 1]))
    probs = [p for _, p in sorted(probs, key=lambda x: x[0])]
    for p, it in zip(probs, dev):
        e = np.exp(p - p.max(-1, keepdims=True))
        preds.append(set(nerlib.decode(e / e.sum(-1, keepdims=True), it[1], first_pieces(it))))
    log(f"exported model: argmax agreement with PyTorch {agree / total:.4f}; int8 dev {nerlib.score(dev_docs, preds)}")
    # Windows of 1024 tokens at inference: convolutions have no position limit, and fewer,
    # longer windows waste less on overlaps (2 KB: -24 % time against 512).
    meta = meta or dict(name="ko-ner", languages=["ko"], max_len=1024, stride=32,
                        thresholds={"PERSON": 0.2, "LOCATION": 0.2, "ORGANIZATION": 0.2},
                        hangul_word_start=True,
                        note="Korean NER, character-level, trained from scratch by "
                             "models/scripts/train_ko.py (see models/README.md).")
    (out / "model.toml").write_text(nerlib.manifest(**meta))
    log(f"wrote {out}: model.onnx {(out / 'model.onnx').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
