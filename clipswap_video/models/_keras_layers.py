"""Keras class name -> torch module: the dispatch of the .h5 interpreter, and the
weightless layers (activations, pooling, resizing, merges, TFOpLambda ops)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.models._keras_ops import (
    AdaIN,
    Conv2D,
    Dense,
    KerasOpError,
    Lambda,
    Normalization,
    PReLU,
    Weights,
    _activation,
    _same_padding,
    torch_axis,
)

Tensors = list[torch.Tensor]


def build_layer(
    class_name: str,
    name: str,
    config: dict[str, Any],
    weights: Weights,
    call: dict[str, Any] | None = None,
) -> nn.Module:
    """The module for one Keras layer; refuses unknown classes naming the layer.
    `call`: a TFOpLambda node's keyword arguments (its constants)."""
    if class_name == "Lambda":
        raise KerasOpError(
            f"layer {name!r} is a Keras Lambda (Python bytecode), which cannot be converted"
        )
    weighted: dict[str, Callable[[], nn.Module]] = {
        "Conv2D": lambda: Conv2D(config, weights),
        "Dense": lambda: Dense(config, weights),
        "BatchNormalization": lambda: Normalization("batch", config, weights),
        "InstanceNormalization": lambda: Normalization("instance", config, weights),
        "Addons>InstanceNormalization": lambda: Normalization("instance", config, weights),
        "LayerNormalization": lambda: Normalization("layer", config, weights),
        "AdaIN": lambda: AdaIN(config, weights),
        "PReLU": lambda: PReLU(config, weights),
    }
    if class_name in weighted:
        return weighted[class_name]()
    if class_name == "TFOpLambda" and config.get("function") == "nn.bias_add":
        return BiasAdd(name, call or {})
    if class_name == "TFOpLambda":
        return Lambda(_tf_function(name, config))
    if class_name == "SlicingOpLambda":
        return Lambda(_getitem(name, config))
    if class_name not in _WEIGHTLESS:
        raise KerasOpError(f"layer {name!r} has class {class_name!r}, which is not supported")
    return Lambda(_WEIGHTLESS[class_name](config))


def _leaky(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    alpha = float(config.get("alpha", 0.3))  # Keras' default slope is 0.3, not 0.01
    return lambda x: F.leaky_relu(x[0], alpha)


def _relu(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    if config.get("max_value") is not None or config.get("threshold", 0) != 0:
        raise KerasOpError("ReLU with max_value or threshold is not supported")
    return lambda x: F.relu(x[0], float(config.get("negative_slope", 0)))  # type: ignore[arg-type]


def _pool(kind: str) -> Callable[[dict[str, Any]], Callable[..., torch.Tensor]]:
    def make(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
        size = tuple(config.get("pool_size", (2, 2)))
        stride = tuple(config.get("strides") or size)
        same = config.get("padding", "valid") == "same"

        def pool(x: Tensors) -> torch.Tensor:
            value = x[0]
            if not same:
                pooled = F.avg_pool2d if kind == "avg" else F.max_pool2d
                return pooled(value, size, stride)
            top, bottom = _same_padding(value.shape[2], size[0], stride[0], 1)
            left, right = _same_padding(value.shape[3], size[1], stride[1], 1)
            pad = (left, right, top, bottom)
            if kind == "max":
                return F.max_pool2d(F.pad(value, pad, value=float("-inf")), size, stride)
            # TF averages over the real pixels only (padding not counted).
            total = F.avg_pool2d(F.pad(value, pad), size, stride)
            ones = F.pad(torch.ones_like(value[:, :1]), pad)
            return total / F.avg_pool2d(ones, size, stride)

        return pool

    return make


def _upsample(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    size = tuple(config.get("size", (2, 2)))
    mode = config.get("interpolation", "nearest")
    if mode == "bilinear":  # half-pixel centres, no antialias
        return lambda x: F.interpolate(
            x[0], scale_factor=size, mode="bilinear", align_corners=False
        )
    return lambda x: F.interpolate(x[0], scale_factor=size, mode="nearest")


def _zero_padding(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    padding = config.get("padding", (1, 1))
    if isinstance(padding, int):
        (top, bottom), (left, right) = (padding, padding), (padding, padding)
    elif isinstance(padding[0], int):
        (top, bottom), (left, right) = (padding[0],) * 2, (padding[1],) * 2
    else:
        (top, bottom), (left, right) = padding
    return lambda x: F.pad(x[0], (left, right, top, bottom))


def _concatenate(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    axis = int(config.get("axis", -1))
    return lambda x: torch.cat(x, dim=torch_axis(axis, x[0].dim()))


def _flatten(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    def flatten(x: Tensors) -> torch.Tensor:
        value = x[0].permute(0, 2, 3, 1) if x[0].dim() == 4 else x[0]  # NHWC order
        return value.reshape(value.shape[0], -1)

    return flatten


def _apply(function: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    return lambda x: function(x[0])


def _reshape(config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    target = [int(side) for side in config["target_shape"]]

    def reshape(x: Tensors) -> torch.Tensor:
        value = x[0].permute(0, 2, 3, 1) if x[0].dim() == 4 else x[0]  # Keras order: NHWC
        value = value.reshape(value.shape[0], *target)
        return value.permute(0, 3, 1, 2) if value.dim() == 4 else value

    return reshape


def _sum(x: Tensors) -> torch.Tensor:
    total = x[0]
    for other in x[1:]:
        total = total + other
    return total


def _product(x: Tensors) -> torch.Tensor:
    total = x[0]
    for other in x[1:]:
        total = total * other
    return total


_WEIGHTLESS: dict[str, Callable[[dict[str, Any]], Callable[..., torch.Tensor]]] = {
    "LeakyReLU": _leaky,
    "ReLU": _relu,
    "Activation": lambda c: _apply(_activation(c["activation"])),
    "AveragePooling2D": _pool("avg"),
    "MaxPooling2D": _pool("max"),
    "UpSampling2D": _upsample,
    "ZeroPadding2D": _zero_padding,
    "Concatenate": _concatenate,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Add": lambda c: _sum,
    "Multiply": lambda c: _product,
    "Subtract": lambda c: lambda x: x[0] - x[1],
    "Dropout": lambda c: lambda x: x[0],
    "SpatialDropout2D": lambda c: lambda x: x[0],
    "GaussianNoise": lambda c: lambda x: x[0],
    # FaceDancer's AFFA merge: inputs [mask, target feature, source feature].
    "AdaptiveAttention": lambda c: lambda x: (1 - x[0]) * x[1] + x[0] * x[2],
}


def _tf_function(name: str, config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    function = config.get("function", "")
    if function == "math.multiply":
        return lambda x, y: x[0] * y
    if function == "math.add":
        return lambda x, y: x[0] + y
    if function == "math.subtract":
        return lambda x, y: x[0] - y
    if function == "math.l2_normalize":
        return lambda x, axis=-1, epsilon=1e-12, **_: (
            x[0]
            * torch.rsqrt(
                torch.clamp(
                    (x[0] ** 2).sum(torch_axis(axis, x[0].dim()), keepdim=True), min=epsilon
                )
            )
        )
    raise KerasOpError(f"layer {name!r} is TFOpLambda {function!r}, which is not supported")


class BiasAdd(nn.Module):
    """tf.nn.bias_add on the channel axis (keras.applications' Caffe-mean step).
    A constant bias is a buffer made once and moved with the module: a tensor made
    from the list on every call was a host-to-device copy each time (a wait for the
    GPU, and a step CUDA graphs cannot capture). Not persistent: state dicts stay
    the file's weights."""

    bias: torch.Tensor | None

    def __init__(self, name: str, call: dict[str, Any]) -> None:
        super().__init__()
        data_format = call.get("data_format")
        if data_format not in (None, "NHWC", "N...C", "channels_last"):
            raise KerasOpError(
                f"layer {name!r}: nn.bias_add with data_format {data_format!r} is not supported"
            )
        bias = call.get("bias")
        constant = bias is not None and not _is_tensor_reference(bias)
        self.register_buffer(
            "bias", torch.tensor(bias, dtype=torch.float32) if constant else None, persistent=False
        )

    def forward(self, inputs: Tensors, bias: Any = None, **_: Any) -> torch.Tensor:
        value = inputs[0]
        added = self.bias if self.bias is not None else bias  # else a tensor of the graph
        shape = [1] * value.dim()
        shape[torch_axis(-1, value.dim())] = -1
        return value + added.to(value.dtype).view(shape)


def _is_tensor_reference(value: Any) -> bool:
    """[layer, node, tensor]: how a TFOpLambda node names another layer's output."""
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)


def _getitem(name: str, config: dict[str, Any]) -> Callable[..., torch.Tensor]:
    """`tensor[...]` with an ellipsis and slices of step 1 or a full reversal
    (`x[..., ::-1]`, keras.applications' RGB -> BGR flip); Keras (NHWC) axes."""
    if config.get("function") != "__operators__.getitem":
        raise KerasOpError(f"layer {name!r} is SlicingOpLambda {config.get('function')!r}")

    def getitem(x: Tensors, slice_spec: Any, **_: Any) -> torch.Tensor:
        value = x[0]
        spec = slice_spec if isinstance(slice_spec, list) else [slice_spec]
        for axis, item in enumerate(_expand_ellipsis(spec, value.dim(), name)):
            value = _slice_axis(value, torch_axis(axis, value.dim()), item, name)
        return value

    return getitem


def _expand_ellipsis(spec: list[Any], rank: int, name: str) -> list[Any]:
    """One entry per axis: the ellipsis (and the missing tail) become full slices."""
    full = {"start": None, "stop": None, "step": None}
    ellipses = [i for i, item in enumerate(spec) if item == {"class_name": "__ellipsis__"}]
    if len(ellipses) > 1 or len(spec) - len(ellipses) > rank:
        raise KerasOpError(f"layer {name!r}: cannot index a rank-{rank} tensor with {spec}")
    if ellipses:
        at = ellipses[0]
        spec = spec[:at] + [full] * (rank - len(spec) + 1) + spec[at + 1 :]
    return spec + [full] * (rank - len(spec))


def _slice_axis(value: torch.Tensor, dim: int, item: Any, name: str) -> torch.Tensor:
    if not isinstance(item, dict) or set(item) != {"start", "stop", "step"}:
        raise KerasOpError(f"layer {name!r}: index {item!r} is not supported (slices only)")
    start, stop, step = item["start"], item["stop"], item["step"]
    if step == -1 and start is None and stop is None:
        return value.flip(dim)
    if step not in (None, 1):
        raise KerasOpError(f"layer {name!r}: slice step {step} is not supported")
    return value.narrow(dim, *_bounds(start, stop, value.shape[dim]))


def _bounds(start: int | None, stop: int | None, size: int) -> tuple[int, int]:
    first, last, _ = slice(start, stop).indices(size)
    return first, max(last - first, 0)


__all__ = ["build_layer"]
