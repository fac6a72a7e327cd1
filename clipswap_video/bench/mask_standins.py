"""Stand-in mask models in the real files' signatures (the tests' and `bench`'s),
built with onnx.helper so that what they mark is known exactly: pure green pixels
are an occluder to the XSeg stand-in and hair to the parser stand-in, pure red
pixels the parser's mouth interior; everything else is face (skin). A few
element-wise operations each, far cheaper than the real networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from clipswap_video.swap.masks import MOUTH_CLASS, PARSER_CLASSES

HAIR_CLASS = 17
GREEN = (0, 255, 0)
RED = (255, 0, 0)
_OPSET = [helper.make_opsetid("", 17)]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=_OPSET)
    model.ir_version = 8  # what the installed onnxruntime reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def write_xseg(path: Path, batch: int | str = "N", size: int = 256) -> Path:
    """XSeg's signature, (N, S, S, 3) BGR [0, 1] -> (N, S, S, 1): 0 on pure green."""
    green_bgr = np.array(GREEN[::-1], np.float32).reshape(1, 1, 1, 3) / 255.0
    nodes = [
        helper.make_node("Sub", ["input", "green"], ["delta"]),
        helper.make_node("Abs", ["delta"], ["distance"]),
        helper.make_node("ReduceMax", ["distance"], ["farthest"], axes=[3], keepdims=1),
        helper.make_node("Less", ["farthest", "tolerance"], ["covered"]),
        helper.make_node("Cast", ["covered"], ["covered_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "covered_f"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "xseg_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, size, size, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, size, size, 1])],
        [
            _const("green", green_bgr),
            _const("tolerance", np.array(0.12)),
            _const("one", np.array(1.0)),
        ],
    )
    return _save(graph, path)


def write_parser(path: Path, batch: int | str = "N", size: int = 512) -> Path:
    """BiSeNet's ONNX signature, (N, 3, S, S) ImageNet-normalised RGB -> (N, 19, S, S):
    pure green is hair, pure red the mouth interior, the rest skin."""
    mean = np.array(_IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(_IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    nodes = [
        helper.make_node("Mul", ["input", "std"], ["scaled"]),
        helper.make_node("Add", ["scaled", "mean"], ["rgb"]),  # back to [0, 1]
        helper.make_node("Split", ["rgb"], ["r", "g", "b"], axis=1),
        helper.make_node("Mul", ["r", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "one"], ["ones"]),
    ]
    for name, colour in (("hair", GREEN), ("mouth", RED)):
        checks = []
        for channel, level in zip("rgb", colour, strict=True):
            nodes += [
                helper.make_node("Sub", [channel, f"level_{level}"], [f"{name}_{channel}_d"]),
                helper.make_node("Abs", [f"{name}_{channel}_d"], [f"{name}_{channel}_a"]),
                helper.make_node(
                    "Less", [f"{name}_{channel}_a", "tolerance"], [f"{name}_{channel}"]
                ),
            ]
            checks.append(f"{name}_{channel}")
        nodes += [
            helper.make_node("And", checks[:2], [f"{name}_rg"]),
            helper.make_node("And", [f"{name}_rg", checks[2]], [f"{name}_is"]),
            helper.make_node("Cast", [f"{name}_is"], [f"{name}_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{name}_f", "ten"], [f"{name}_score"]),
        ]
    channels = ["zeros"] * PARSER_CLASSES
    channels[1], channels[HAIR_CLASS], channels[MOUTH_CLASS] = "ones", "hair_score", "mouth_score"
    nodes.append(helper.make_node("Concat", channels, ["output"], axis=1))
    graph = helper.make_graph(
        nodes,
        "bisenet_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])],
        [
            helper.make_tensor_value_info(
                "output", TensorProto.FLOAT, [batch, PARSER_CLASSES, size, size]
            )
        ],
        [
            _const("mean", mean),
            _const("std", std),
            _const("zero", np.array(0.0)),
            _const("one", np.array(1.0)),
            _const("ten", np.array(10.0)),
            _const("tolerance", np.array(0.12)),
            _const("level_0", np.array(0.0)),
            _const("level_255", np.array(1.0)),
        ],
    )
    return _save(graph, path)


__all__ = ["GREEN", "HAIR_CLASS", "RED", "write_parser", "write_xseg"]
