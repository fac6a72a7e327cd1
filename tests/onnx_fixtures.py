"""Small ONNX models with the input/output signatures of the buffalo_l files.

Built with onnx.helper so each output is known exactly: the fake SCRFD emits
constant tensors that encode chosen faces (optionally scaled by the input's
colour), the fake ArcFace (clipswap_video/bench/onnx_standins.py) is a fixed
linear map of a pooled crop, the fake 2d106det emits constant points.
insightface's model zoo reads each as the class of the real file (SCRFD,
ArcFaceONNX, Landmark).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from clipswap_video.bench.onnx_standins import RECOGNISER_POOL, recogniser_weights
from clipswap_video.bench.onnx_standins import write_recogniser as write_arcface

STRIDES = (8, 16, 32)
OPSET = [helper.make_opsetid("", 17)]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8  # what the installed onnxruntime reads, whatever onnx writes
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scrfd_outputs(canvas: tuple[int, int], faces: list[dict[str, Any]]) -> list[np.ndarray]:
    """The 9 SCRFD outputs for a (height, width) input with `faces` planted.

    Each face: stride, cell (col, row), anchor (0/1), score, box (x1, y1, x2, y2)
    and points (5, 2) in canvas pixels; they are turned into the distances the
    real model emits.
    """
    height, width = canvas
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        rows = (height // stride) * (width // stride) * 2
        scores.append(np.zeros((rows, 1), np.float32))
        boxes.append(np.zeros((rows, 4), np.float32))
        points.append(np.zeros((rows, 10), np.float32))
    for face in faces:
        level = STRIDES.index(face["stride"])
        stride, (col, row) = face["stride"], face["cell"]
        index = (row * (width // stride) + col) * 2 + face["anchor"]
        centre = np.array([col * stride, row * stride], np.float32)
        box = np.asarray(face["box"], np.float32)
        scores[level][index] = face["score"]
        boxes[level][index] = np.r_[centre - box[:2], box[2:] - centre] / stride
        points[level][index] = ((np.asarray(face["points"]) - centre) / stride).reshape(-1)
    return scores + boxes + points


def write_scrfd(
    path: Path,
    canvas: tuple[int, int],
    faces: list[dict[str, Any]],
    *,
    outputs: int = 9,
    dynamic: bool = False,
    batch_dim: bool = False,
    colour_gate: bool = False,
) -> Path:
    """An SCRFD stand-in: input (1, 3, H, W), constant outputs encoding `faces`.

    Args:
        path: where the .onnx file goes.
        canvas: (height, width) the outputs are laid out for.
        faces: as for `scrfd_outputs`.
        outputs: how many of the 9 outputs to keep (fewer makes a wrong model).
        dynamic: declare the input's H and W symbolic, as det_10g.onnx does.
        batch_dim: outputs (1, rows, k) instead of (rows, k), as some exports emit.
        colour_gate: scores times clip(0.5 + mean of input channel 0 - mean of
            channel 2, 0, 1) (the network's input is RGB, (pixel - 127.5) / 128),
            so that a reddish image fed with its channels swapped loses its faces.
    """
    tensors = scrfd_outputs(canvas, faces)[:outputs]
    if batch_dim:
        tensors = [tensor[None] for tensor in tensors]
    nodes, infos, weights = [], [], []
    if colour_gate:
        weights = [
            numpy_helper.from_array(np.array([1.0, 0.0, -1.0], np.float32), "red_minus_blue"),
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ]
        nodes += [
            helper.make_node("ReduceMean", ["input.1"], ["means"], axes=[0, 2, 3], keepdims=0),
            helper.make_node("Mul", ["means", "red_minus_blue"], ["signed"]),
            helper.make_node("ReduceSum", ["signed"], ["difference"], keepdims=0),
            helper.make_node("Add", ["difference", "half"], ["raw_gate"]),
            helper.make_node("Clip", ["raw_gate", "zero", "one"], ["gate"]),
        ]
    for index, tensor in enumerate(tensors):
        name = f"out{index}"
        value = numpy_helper.from_array(tensor)
        constant = f"constant{index}" if colour_gate and index < 3 else name
        nodes.append(helper.make_node("Constant", [], [constant], value=value))
        if constant != name:  # a score output
            nodes.append(helper.make_node("Mul", [constant, "gate"], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(tensor.shape)))
    size: list[int | str] = ["H", "W"] if dynamic else list(canvas)
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, *size])
    return _save(helper.make_graph(nodes, "scrfd", [image], infos, weights), path)


def arcface_reference(crop: np.ndarray, seed: int = 0) -> np.ndarray:
    """What the fake ArcFace outputs for one RGB uint8 112 x 112 crop (not normalised)."""
    cells = 112 // RECOGNISER_POOL
    scaled = (crop.astype(np.float32) - 127.5) / 127.5
    pooled = scaled.reshape(cells, RECOGNISER_POOL, cells, RECOGNISER_POOL, 3).mean((1, 3))
    return np.asarray(pooled.transpose(2, 0, 1).reshape(-1) @ recogniser_weights(seed))


def write_landmark106(path: Path, points: np.ndarray) -> Path:
    """input (N, 3, 192, 192) -> (N, 2K): `points` (K, 2) in [-1, 1] for every crop
    (K = 106 as in 2d106det; another K makes another landmark model)."""
    width = points.size
    constant = numpy_helper.from_array(points.reshape(1, width).astype(np.float32), "points")
    zero = numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero")
    axis = numpy_helper.from_array(np.array([1], np.int64), "axis")
    nodes = [  # 0 * mean(input) keeps the batch size: (N, 1) broadcast onto (1, 2K)
        helper.make_node("ReduceMean", ["data"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
        helper.make_node("Mul", ["column", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "points"], ["fc1"]),
    ]
    image = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 192, 192])
    output = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", width])
    graph = helper.make_graph(nodes, "landmark", [image], [output], [constant, zero, axis])
    return _save(graph, path)


__all__ = [
    "arcface_reference",
    "scrfd_outputs",
    "write_arcface",
    "write_landmark106",
    "write_scrfd",
]
