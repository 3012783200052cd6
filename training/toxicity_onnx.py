"""Export the fine-tuned toxicity classifier of ``toxicity_encoder.py`` to ONNX with int8 weights.

The runtime (``guardproxy/guards/toxicity/encoder.py``) feeds token ids and an attention mask and
reads P(toxic); it needs onnxruntime and the vendored tokenizer, never torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class Exported(nn.Module):
    """What ships: the probability, so the runtime needs no sigmoid of its own."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(input_ids, attention_mask))


def export(model: nn.Module, out: Path, settings: dict[str, Any]) -> None:
    """The whole model (embeddings to probability) to ONNX, its weight matrices stored as int8."""
    float_path = out.with_suffix(".float.onnx")
    ids = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(Exported(model), (ids, torch.ones_like(ids)), str(float_path), dynamo=False,
                      input_names=["input_ids", "attention_mask"], output_names=["toxic"], opset_version=17,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "toxic": {0: "batch"}})
    weights_to_int8(float_path, out)
    float_path.unlink()
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out} sha256 {digest} settings {json.dumps(settings)}")


def weights_to_int8(source: Path, out: Path) -> None:
    """Store every weight matrix as int8 with a scale per output channel, dequantised in the graph
    (``Cast`` and ``Mul``, as the MiniLM file does), so onnxruntime folds it back to float32 at load.

    Weights only: onnxruntime's dynamic quantisation also quantises activations with one scale per
    batch, which made a text's score depend on the other texts run with it (by up to 0.12)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    axes: dict[str, int] = {}  # the axis a scale runs along: output channels of a product, rows of a lookup
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in initializers:
            axes[node.input[1]] = 1
        elif node.op_type == "Gather" and node.input[0] in initializers:
            axes[node.input[0]] = 0
    nodes = []
    for name, axis in axes.items():
        weight = numpy_helper.to_array(initializers[name])
        if weight.ndim != 2 or weight.dtype != np.float32:
            continue
        scale = np.maximum(np.abs(weight).max(axis=1 - axis, keepdims=True), 1e-12) / 127.0
        quantised = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([numpy_helper.from_array(quantised, name + "_q"),
                                  numpy_helper.from_array(scale.astype(np.float32), name + "_scale")])
        nodes += [helper.make_node("Cast", [name + "_q"], [name + "_float"], to=onnx.TensorProto.FLOAT),
                  helper.make_node("Mul", [name + "_float", name + "_scale"], [name])]
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
