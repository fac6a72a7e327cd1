"""A small ONNX stand-in for insightface's inswapper_128.onnx, in its real signature.

inputs `target` (N, 3, 128, 128) RGB in [0, 1] and `source` (N, 512), output
(N, 3, 128, 128): a 3 x 3 convolution of the target plus, per channel, the
latent's dot product with a fixed (512, 3) matrix, so the output depends on
every crop pixel nearby and on the latent. The last initializer is `emap`
(512, 512), where insightface's INSwapper reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


def inswapper_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv": (rng.normal(size=(3, 3, 3, 3)) * 0.1).astype(np.float32),
        "mix": (rng.normal(size=(512, 3)) * 0.05).astype(np.float32),
        "emap": rng.normal(size=(512, 512)).astype(np.float32),
    }


def write_inswapper(
    path: Path,
    *,
    seed: int = 0,
    batch: int | str = "N",
    fp16: bool = False,
    emap: bool = True,
) -> Path:
    """The stand-in. `batch`: 1 for a fixed batch dimension (as the released file);
    `fp16`: the convolution and mix in float16 between Casts (float32 inputs);
    `emap=False`: no initializer after the network's own (a file without emap)."""
    arrays = inswapper_arrays(seed)
    dtype = np.float16 if fp16 else np.float32
    names = ["conv", "mix"]
    initializers = [numpy_helper.from_array(arrays[n].astype(dtype), n) for n in names]
    shape = numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "shape")
    initializers.append(shape)
    if emap:
        initializers.append(numpy_helper.from_array(arrays["emap"], "emap"))
    nodes = []
    target, source = "target", "source"
    if fp16:
        nodes += [
            helper.make_node("Cast", ["target"], ["target16"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["source"], ["source16"], to=TensorProto.FLOAT16),
        ]
        target, source = "target16", "source16"
    nodes += [
        helper.make_node("Conv", [target, "conv"], ["convolved"], pads=[1, 1, 1, 1]),
        helper.make_node("MatMul", [source, "mix"], ["mixed"]),
        helper.make_node("Reshape", ["mixed", "shape"], ["per_channel"]),
        helper.make_node("Add", ["convolved", "per_channel"], ["out16" if fp16 else "output"]),
    ]
    if fp16:
        nodes.append(helper.make_node("Cast", ["out16"], ["output"], to=TensorProto.FLOAT))
    inputs = [
        helper.make_tensor_value_info("target", TensorProto.FLOAT, [batch, 3, 128, 128]),
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [batch, 512]),
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, 128, 128])
    graph = helper.make_graph(nodes, "inswapper", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8  # what the installed onnxruntime reads, whatever onnx writes
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def inswapper_reference(crops: np.ndarray, latent: np.ndarray, seed: int = 0) -> np.ndarray:
    """The stand-in's output for (N, 3, 128, 128) crops in [0, 1] and a (1, 512) latent."""
    import torch
    import torch.nn.functional as F

    arrays = inswapper_arrays(seed)
    convolved = F.conv2d(torch.from_numpy(crops), torch.from_numpy(arrays["conv"]), padding=1)
    mixed = (latent @ arrays["mix"]).reshape(-1, 3, 1, 1)
    return np.asarray(convolved.numpy() + mixed)


__all__ = ["inswapper_arrays", "inswapper_reference", "write_inswapper"]
