"""Keras 2 `.h5` files written by the tests, in the real layout (root attrs
model_config / keras_version, model_weights/<layer> groups with weight_names,
optionally chunked layer_names0..N), plus NumPy reference ops in NHWC.

Narrow graphs of the same layer classes as FaceDancer / ArcFace files, so the
interpreter is checked without TensorFlow and without the 90-160 MB originals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

LayerWeights = dict[str, list[tuple[str, np.ndarray]]]


def node(*refs: str | tuple[str, int, int]) -> list[list[list[Any]]]:
    """inbound_nodes of a layer called once on `refs` (name or (name, node, tensor))."""
    entries = [[r, 0, 0, {}] if isinstance(r, str) else [*r, {}] for r in refs]
    return [entries]


def layer(class_name: str, name: str, inbound: Any = (), **config: Any) -> dict[str, Any]:
    return {"class_name": class_name, "name": name, "config": {"name": name, **config},
            "inbound_nodes": list(inbound)}  # fmt: skip


def input_layer(name: str, shape: list[int | None]) -> dict[str, Any]:
    return layer("InputLayer", name, batch_input_shape=shape, dtype="float32")


def functional(name: str, layers: list[dict[str, Any]], inputs: list[str],
               outputs: list[str], inbound: Any = ()) -> dict[str, Any]:  # fmt: skip
    return {
        "class_name": "Functional", "name": name, "inbound_nodes": list(inbound),
        "config": {"name": name, "layers": layers,
                   "input_layers": [[n, 0, 0] for n in inputs],
                   "output_layers": [[n, 0, 0] for n in outputs]},
    }  # fmt: skip


def write_keras_h5(
    path: Path, model: dict[str, Any], weights: LayerWeights, *, chunks: int = 1,
    with_config: bool = True,
) -> Path:  # fmt: skip
    """Writes `model` (a Functional config) and `weights` as Keras 2.14 would."""
    names = [entry["name"] for entry in model["config"]["layers"]]
    with h5py.File(path, "w") as file:
        file.attrs["keras_version"] = "2.14.0"
        file.attrs["backend"] = "tensorflow"
        if with_config:
            file.attrs["model_config"] = json.dumps(model).encode("utf-8")
        group = file.create_group("model_weights")
        if chunks == 1:
            group.attrs["layer_names"] = np.array(names, dtype="S")
        else:  # as Keras does past 64 KB: layer_names0, layer_names1, ...
            for index, part in enumerate(np.array_split(np.array(names, dtype="S"), chunks)):
                group.attrs[f"layer_names{index}"] = part
        for name in names:
            layer_group = group.create_group(name)
            arrays = weights.get(name, [])
            layer_group.attrs["weight_names"] = np.array([n for n, _ in arrays], dtype="S")
            for weight_name, array in arrays:
                layer_group.create_dataset(weight_name, data=array)
    return path


# NumPy reference ops, NHWC -------------------------------------------------------


def same_pad(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    def amount(size: int) -> tuple[int, int]:
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    return np.pad(x, [(0, 0), amount(x.shape[1]), amount(x.shape[2]), (0, 0)])


def conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 1,
         same: bool = True) -> np.ndarray:  # fmt: skip
    k = kernel.shape[0]
    padded = same_pad(x, k, stride) if same else x
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (N, H', W', C, k, k)
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias


def instance_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-3
) -> np.ndarray:
    mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
               var: np.ndarray, eps: float) -> np.ndarray:  # fmt: skip
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def leaky(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x >= 0, x, alpha * x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def avg_pool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))


def max_pool(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    return windows[:, ::stride, ::stride].max(axis=(4, 5))


def upsample2_bilinear(x: np.ndarray) -> np.ndarray:
    """x2 with half-pixel centres (TF2 resize / Keras UpSampling2D bilinear)."""
    for axis in (1, 2):
        size = x.shape[axis]
        source = np.clip((np.arange(2 * size) + 0.5) / 2 - 0.5, 0, size - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, size - 1)
        frac = (source - low).reshape([-1 if a == axis else 1 for a in range(4)])
        x = np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac
    return x
