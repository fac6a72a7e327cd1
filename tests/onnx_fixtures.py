"""Small ONNX models with the input/output signatures of the buffalo_l files.

Built with onnx.helper so each output is known exactly: the fake SCRFD emits
constant tensors that encode chosen faces, the fake ArcFace is a fixed linear
map of a pooled crop, the fake 2d106det emits constant points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
OPSET = [helper.make_opsetid("", 17)]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scrfd_outputs(canvas: int, faces: list[dict]) -> list[np.ndarray]:
    """The 9 SCRFD outputs of a `canvas` x `canvas` input with `faces` planted.

    Each face: stride, cell (col, row), anchor (0/1), score, box (x1, y1, x2, y2)
    and points (5, 2) in canvas pixels; they are turned into the distances the
    real model emits.
    """
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        rows = (canvas // stride) ** 2 * 2
        scores.append(np.zeros((rows, 1), np.float32))
        boxes.append(np.zeros((rows, 4), np.float32))
        points.append(np.zeros((rows, 10), np.float32))
    for face in faces:
        level = STRIDES.index(face["stride"])
        stride, (col, row) = face["stride"], face["cell"]
        index = (row * (canvas // stride) + col) * 2 + face["anchor"]
        centre = np.array([col * stride, row * stride], np.float32)
        box = np.asarray(face["box"], np.float32)
        scores[level][index] = face["score"]
        boxes[level][index] = np.r_[centre - box[:2], box[2:] - centre] / stride
        points[level][index] = ((np.asarray(face["points"]) - centre) / stride).reshape(-1)
    return scores + boxes + points


def write_scrfd(path: Path, canvas: int, faces: list[dict], *, outputs: int = 9) -> Path:
    """A fixed-size SCRFD stand-in: input (1, 3, canvas, canvas), 9 constant outputs."""
    tensors = scrfd_outputs(canvas, faces)[:outputs]
    nodes, infos = [], []
    for i, tensor in enumerate(tensors):
        name = f"out{i}"
        nodes.append(
            helper.make_node("Constant", [], [name], value=numpy_helper.from_array(tensor))
        )
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(tensor.shape)))
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, canvas, canvas])
    return _save(helper.make_graph(nodes, "scrfd", [image], infos), path)


def arcface_weights(seed: int = 0) -> np.ndarray:
    """(588, 512): the fake recogniser's map from an 8x8-pooled 112 crop."""
    return np.random.default_rng(seed).normal(size=(3 * 14 * 14, 512)).astype(np.float32)


def write_arcface(path: Path, seed: int = 0) -> Path:
    """input (N, 3, 112, 112) -> AveragePool 8 -> flatten -> MatMul -> (N, 512)."""
    weights = numpy_helper.from_array(arcface_weights(seed), "weights")
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["683"]),
    ]
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])
    output = helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])
    return _save(helper.make_graph(nodes, "arcface", [image], [output], [weights]), path)


def write_landmark106(path: Path, points: np.ndarray) -> Path:
    """input (N, 3, 192, 192) -> (N, 212): `points` (106, 2) in [-1, 1] for every crop."""
    constant = numpy_helper.from_array(points.reshape(1, 212).astype(np.float32), "points")
    zero = numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero")
    nodes = [  # 0 * mean(input) keeps the batch size: (N, 1) broadcast onto (1, 212)
        helper.make_node("ReduceMean", ["data"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
        helper.make_node("Mul", ["column", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "points"], ["fc1"]),
    ]
    axis = numpy_helper.from_array(np.array([1], np.int64), "axis")
    image = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 192, 192])
    output = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", 212])
    graph = helper.make_graph(nodes, "landmark", [image], [output], [constant, zero, axis])
    return _save(graph, path)
