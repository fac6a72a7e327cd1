"""Small ONNX stand-ins for the swap models users bring, in their real signatures
(input names, shapes, dtypes, inswapper's `emap`), with random weights: what the
benchmark times the pipeline around when the real files are not given, and what
the tests load through the real loaders.

- swapper (FaceFusion's): `target` (N, 3, S, S) and `source`, (N, 512) or an image
  (N, 3, s, s) -> (N, 3, S, S): a 3 x 3 convolution of the target plus, per
  channel, the source's dot product with a fixed (512, 3) matrix (an image source:
  its per-channel mean times fixed gains);
- converter: `input` (N, 512) @ a fixed (512, 512) matrix;
- inswapper: the swapper at 128 px whose last initializer is `emap` (512, 512),
  where insightface's INSwapper reads it;
- recogniser (w600k_r50's signature): (N, 3, 112, 112) -> 8 x 8 average pool ->
  a fixed linear map -> (N, 512); pooling keeps the file small while the output
  still depends on where every part of the crop comes from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]
RECOGNISER_POOL = 8


def swapper_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The swappers' weights (inswapper's emap included)."""
    rng = np.random.default_rng(seed)
    return {
        "conv": (rng.normal(size=(3, 3, 3, 3)) * 0.1).astype(np.float32),
        "mix": (rng.normal(size=(512, 3)) * 0.05).astype(np.float32),
        "gain": rng.normal(size=(1, 3, 1, 1)).astype(np.float32),
        "emap": rng.normal(size=(512, 512)).astype(np.float32),
    }


def converter_matrix(seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(512, 512)) * 0.05).astype(np.float32)


def recogniser_weights(seed: int = 0, width: int = 512) -> np.ndarray:
    """(588, width): the recogniser's map from the pooled 112 px crop."""
    cells = 112 // RECOGNISER_POOL
    shape = (3 * cells * cells, width)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def write_swapper(
    path: Path,
    crop_size: int,
    *,
    source_size: int = 0,
    seed: int = 0,
    batch: int | str = "N",
    fp16: bool = False,
    emap: bool = False,
) -> Path:
    """A swapper for `crop_size` crops; `source_size` > 0: it takes a source image of
    that side, else a 512-d vector. `batch`: 1 for a fixed batch dimension; `fp16`:
    the network in float16 between Casts (float32 inputs); `emap`: inswapper's
    matrix as the last initializer."""
    arrays = swapper_arrays(seed)
    dtype = np.float16 if fp16 else np.float32
    initializers = [numpy_helper.from_array(arrays["conv"].astype(dtype), "conv")]
    nodes, target, source = [], "target", "source"
    if fp16:
        nodes += [
            helper.make_node("Cast", ["target"], ["target16"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["source"], ["source16"], to=TensorProto.FLOAT16),
        ]
        target, source = "target16", "source16"
    nodes.append(helper.make_node("Conv", [target, "conv"], ["convolved"], pads=[1, 1, 1, 1]))
    if source_size:
        initializers.append(numpy_helper.from_array(arrays["gain"].astype(dtype), "gain"))
        nodes += [
            helper.make_node("GlobalAveragePool", [source], ["pooled"]),
            helper.make_node("Mul", ["pooled", "gain"], ["per_channel"]),
        ]
        source_shape = [batch, 3, source_size, source_size]
    else:
        initializers += [
            numpy_helper.from_array(arrays["mix"].astype(dtype), "mix"),
            numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "shape"),
        ]
        nodes += [
            helper.make_node("MatMul", [source, "mix"], ["mixed"]),
            helper.make_node("Reshape", ["mixed", "shape"], ["per_channel"]),
        ]
        source_shape = [batch, 512]
    if emap:
        initializers.append(numpy_helper.from_array(arrays["emap"], "emap"))
    nodes.append(
        helper.make_node("Add", ["convolved", "per_channel"], ["out16" if fp16 else "output"])
    )
    if fp16:
        nodes.append(helper.make_node("Cast", ["out16"], ["output"], to=TensorProto.FLOAT))
    shape = [batch, 3, crop_size, crop_size]
    inputs = [
        helper.make_tensor_value_info("target", TensorProto.FLOAT, shape),
        helper.make_tensor_value_info("source", TensorProto.FLOAT, source_shape),
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)
    return _save(helper.make_graph(nodes, "swapper", inputs, [output], initializers), path)


def write_inswapper(
    path: Path, *, seed: int = 0, batch: int | str = "N", fp16: bool = False, emap: bool = True
) -> Path:
    """inswapper_128.onnx's signature; `emap=False`: a file without it."""
    return write_swapper(path, 128, seed=seed, batch=batch, fp16=fp16, emap=emap)


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


def write_recogniser(path: Path, seed: int = 0, width: int = 512) -> Path:
    weights = numpy_helper.from_array(recogniser_weights(seed, width), "weights")
    kernel = [RECOGNISER_POOL, RECOGNISER_POOL]
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=kernel, strides=kernel
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["683"]),
    ]
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])
    output = helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", width])
    return _save(helper.make_graph(nodes, "arcface", [image], [output], [weights]), path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8  # what the installed onnxruntime reads, whatever onnx writes
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


__all__ = [
    "RECOGNISER_POOL",
    "converter_matrix",
    "recogniser_weights",
    "swapper_arrays",
    "write_converter",
    "write_inswapper",
    "write_recogniser",
    "write_swapper",
]
