"""Small ONNX stand-ins for FaceFusion's swappers and embedding converters, in their
real signatures.

A swapper: inputs `target` (N, 3, S, S) and `source`, either (N, 512) or an image
(N, 3, s, s); output (N, 3, S, S) = a 3 x 3 convolution of the target plus, per
channel, the source's dot product with a fixed (512, 3) matrix (an image source:
its per-channel mean times fixed factors). The output depends on every crop pixel
nearby and on the source, so a wrong normalisation, colour order or source shows.
A converter: `input` (N, 512) @ a fixed (512, 512) matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from clipswap_video.swap.onnx_models import OnnxSwapperModel

OPSET = [helper.make_opsetid("", 17)]


def swapper_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv": (rng.normal(size=(3, 3, 3, 3)) * 0.1).astype(np.float32),
        "mix": (rng.normal(size=(512, 3)) * 0.05).astype(np.float32),
        "gain": rng.normal(size=(1, 3, 1, 1)).astype(np.float32),
    }


def converter_matrix(seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(512, 512)) * 0.05).astype(np.float32)


def write_swapper(
    path: Path,
    model: OnnxSwapperModel,
    *,
    seed: int = 0,
    batch: int | str = "N",
    size: int | None = None,
) -> Path:
    """The stand-in for `model` (`size`: another crop side, for a wrong file)."""
    side = size or model.crop_size
    arrays = swapper_arrays(seed)
    initializers = [numpy_helper.from_array(arrays["conv"], "conv")]
    nodes = [helper.make_node("Conv", ["target", "conv"], ["convolved"], pads=[1, 1, 1, 1])]
    if model.source == "image":
        initializers.append(numpy_helper.from_array(arrays["gain"], "gain"))
        nodes += [
            helper.make_node("GlobalAveragePool", ["source"], ["pooled"]),
            helper.make_node("Mul", ["pooled", "gain"], ["per_channel"]),
        ]
        source_shape = [batch, 3, model.source_size, model.source_size]
    else:
        initializers += [
            numpy_helper.from_array(arrays["mix"], "mix"),
            numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "shape"),
        ]
        nodes += [
            helper.make_node("MatMul", ["source", "mix"], ["mixed"]),
            helper.make_node("Reshape", ["mixed", "shape"], ["per_channel"]),
        ]
        source_shape = [batch, 512]
    nodes.append(helper.make_node("Add", ["convolved", "per_channel"], ["output"]))
    inputs = [
        helper.make_tensor_value_info("target", TensorProto.FLOAT, [batch, 3, side, side]),
        helper.make_tensor_value_info("source", TensorProto.FLOAT, source_shape),
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, side, side])
    return _save(helper.make_graph(nodes, model.name, inputs, [output], initializers), path)


def write_converter(path: Path, seed: int = 1) -> Path:
    matrix = numpy_helper.from_array(converter_matrix(seed), "matrix")
    node = helper.make_node("MatMul", ["input", "matrix"], ["output"])
    graph = helper.make_graph(
        [node],
        "converter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 512])],
        [matrix],
    )
    return _save(graph, path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8  # what the installed onnxruntime reads, whatever onnx writes
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def swapper_reference(model: OnnxSwapperModel, crops: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The stand-in's output, in 0..255, for (N, 3, S, S) crops in 0..255 and the
    model's `source` input, with the model's normalisation on the way in and out."""
    arrays = swapper_arrays()
    mean = np.asarray(model.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(model.std, np.float32).reshape(1, 3, 1, 1)
    blob = torch.from_numpy(((crops / 255.0 - mean) / std).astype(np.float32))
    convolved = F.conv2d(blob, torch.from_numpy(arrays["conv"]), padding=1).numpy()
    if model.source == "image":
        per_channel = source.mean(axis=(2, 3), keepdims=True) * arrays["gain"]
    else:
        per_channel = (source @ arrays["mix"]).reshape(-1, 3, 1, 1)
    output = convolved + per_channel
    if model.output_normalised:
        output = output * std + mean
    return np.asarray(output * 255.0)


__all__ = [
    "converter_matrix",
    "swapper_arrays",
    "swapper_reference",
    "write_converter",
    "write_swapper",
]
