"""Shared pieces of the NER training scripts: corpus loading, token labels, BIO decoding that
matches garim's Rust decoder (src/detect/ner/model.rs: the first sub-word of a word decides,
a stray I- starts a span), strict span scoring, ONNX export checks and int8 quantisation.

Limits: scoring here is for model selection on a dev split; the figures reported in the model
card come from `garim eval` on tests/data/ner/*_heldout.jsonl, through the Rust runtime.
"""

import json
import random

import numpy as np

TYPES = ["PER", "LOC", "ORG"]
SPEC = {"PER": "PERSON", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
FROM_SPEC = {v: k for k, v in SPEC.items()}
LABELS = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]
L2I = {l: i for i, l in enumerate(LABELS)}


def load_jsonl(path):
    return [json.loads(l) for l in open(path, encoding="utf-8")]


def token_labels(offsets, spans, first_piece):
    """Label id per token from code-point spans; -100 for non-first sub-word pieces."""
    out = []
    for i, (s, e) in enumerate(offsets):
        if not first_piece[i]:
            out.append(-100)
            continue
        lab = "O"
        for sp in spans:
            if sp["label"] not in FROM_SPEC:
                continue
            if s >= sp["start"] and e <= sp["end"] and e > s:
                t = FROM_SPEC[sp["label"]]
                lab = ("B-" if s == sp["start"] else "I-") + t
                break
        out.append(L2I[lab])
    return out


def decode(probs, offsets, first_piece):
    """Spans (start, end, SPEC label) in code points, decoded like the Rust runtime."""
    spans = []
    cur = None  # (start token, type)

    def close(end_tok):
        nonlocal cur
        if cur is not None:
            st, ty = cur
            spans.append((offsets[st][0], offsets[end_tok - 1][1], SPEC[ty]))
            cur = None

    for i in range(len(offsets)):
        if not first_piece[i] and i > 0:
            continue
        lab = LABELS[int(np.argmax(probs[i]))]
        if lab == "O":
            close(i)
        elif lab.startswith("B-"):
            close(i)
            cur = (i, lab[2:])
        else:
            ty = lab[2:]
            if cur is None or cur[1] != ty:
                close(i)
                cur = (i, ty)
    close(len(offsets))
    return [s for s in spans if s[0] < s[1]]


def score(gold_docs, pred_spans):
    """Strict per-label P/R/F1. gold_docs: list of docs; pred_spans: list of sets."""
    res = {}
    for lab in SPEC.values():
        tp = fp = fn = 0
        for d, p in zip(gold_docs, pred_spans):
            g = {(s["start"], s["end"], s["label"]) for s in d["spans"] if s["label"] == lab}
            pp = {x for x in p if x[2] == lab}
            tp += len(g & pp)
            fp += len(pp - g)
            fn += len(g - pp)
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
        res[lab] = (round(pr, 4), round(rc, 4), round(f1, 4))
    return res


def start_run(args, seed):
    """Threads, seeds, output and work directories, and a logger that also appends to
    WORK/train.log. Returns (out, work, rng, log)."""
    import time
    from pathlib import Path

    import torch

    torch.set_num_threads(args.threads)
    seed_all(seed)
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    logf = open(work / "train.log", "a", encoding="utf-8")

    def log(msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    return out, work, random.Random(seed), log


def seed_all(seed):
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quantize(src, dst, ops=None):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=ops or ["MatMul", "Gemm"])


def manifest(name, languages, max_len, stride, thresholds, note, hangul_word_start=False):  # noqa: PLR0913
    word_start = ["# A span never starts inside a Hangul word (see src/detect/ner/model.rs).",
                  "hangul_word_start = true"] if hangul_word_start else []
    lines = [
        f"# {note}",
        f'name = "{name}"',
        'onnx = "model.onnx"',
        'tokenizer = "tokenizer.json"',
        "labels = [" + ", ".join(f'"{l}"' for l in LABELS) + "]",
        "languages = [" + ", ".join(f'"{l}"' for l in languages) + "]",
        f"max_len = {max_len}",
        f"stride = {stride}",
        "batch_size = 8",
        "default_threshold = 0.2",
    ] + word_start + [
        "",
        "[label_map]",
        'PER = "PERSON"',
        'LOC = "LOCATION"',
        'ORG = "ORGANIZATION"',
        "",
        "[thresholds]",
    ] + [f"{k} = {v}" for k, v in thresholds.items()]
    return "\n".join(lines) + "\n"


def quantize_static(src, dst, tokenizer_path, texts, ops, max_tokens=500):
    """int8 weights and activations for `ops` (QDQ, per-channel weights), activation scales
    calibrated once (min/max) on `texts`. The scales are fixed in the graph, so unlike dynamic
    quantisation a text's result does not depend on the texts batched with it."""
    import numpy as np
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static as qs)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(texts)

        def get_next(self):
            t = next(self.it, None)
            if t is None:
                return None
            ids = [cls] + tok.encode(t, add_special_tokens=False).ids[:max_tokens] + [sep]
            a = np.array([ids], dtype=np.int64)
            return {"input_ids": a, "attention_mask": np.ones_like(a)}

    qs(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
       activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
       op_types_to_quantize=list(ops), calibrate_method=CalibrationMethod.MinMax)


def mention_pool(docs, labels):
    """Every mention of `labels` in `docs`, per label, sorted (deterministic choices)."""
    pool = {}
    for d in docs:
        for s in d["spans"]:
            if s["label"] in labels:
                pool.setdefault(s["label"], []).append(d["text"][s["start"]:s["end"]])
    return {k: sorted(v) for k, v in pool.items()}


def replace_mentions(docs, copies, pick, suffix="-sub"):
    """`copies` copies of each doc in which `pick(label, mention)` may replace each span's text
    (it returns the new text, or None to keep it); spans are shifted to match. Docs without
    spans are not copied."""
    out = []
    for d in docs:
        if not d["spans"]:
            continue
        for _ in range(copies):
            text, spans, pos = [], [], 0
            for s in sorted(d["spans"], key=lambda s: s["start"]):
                text.append(d["text"][pos:s["start"]])
                piece = d["text"][s["start"]:s["end"]]
                piece = pick(s["label"], piece) or piece
                start = sum(len(t) for t in text)
                spans.append({"start": start, "end": start + len(piece), "label": s["label"]})
                text.append(piece)
                pos = s["end"]
            text.append(d["text"][pos:])
            out.append({"id": d["id"] + suffix, "text": "".join(text), "spans": spans})
    return out
