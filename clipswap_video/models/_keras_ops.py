"""Torch equivalents of the Keras 2 layer classes that FaceDancer / ClipSwap /
ArcFace graphs use (docs/models.md, sections 1, 2 and 5). Tensors are NCHW
inside; Keras' NHWC axes are mapped here.

Each builder takes the layer's config and its weights (leaf name -> array, in
Keras' order) and returns a module whose forward takes the list of input
tensors (and the node's keyword tensors, for TFOpLambda).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Weights = list[tuple[str, np.ndarray]]
"""(leaf name, array) in the order of the layer's `weight_names`."""


class KerasOpError(ValueError):
    """A layer this interpreter refuses (unknown class, Lambda, unsupported option)."""


def torch_axis(axis: int, rank: int) -> int:
    """A Keras (channels-last) axis as the matching dim of the NCHW tensor."""
    axis %= rank
    if rank != 4:
        return axis
    return {0: 0, 1: 2, 2: 3, 3: 1}[axis]


def _leaf(weights: Weights, name: str) -> torch.Tensor | None:
    for leaf, array in weights:
        if leaf == name:
            return torch.from_numpy(np.ascontiguousarray(array, np.float32))
    return None


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    functions: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "linear": lambda x: x,
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda x: F.softmax(x, dim=1),
    }
    if name not in functions:
        raise KerasOpError(f"activation {name!r} is not supported")
    return functions[name]


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    # TF 'same': the extra pixel of an odd total goes bottom / right.
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class Conv2D(nn.Module):
    def __init__(self, config: dict[str, Any], weights: Weights) -> None:
        super().__init__()
        kernel = _leaf(weights, "kernel")
        assert kernel is not None, "Conv2D without a kernel"
        self.weight = nn.Parameter(kernel.permute(3, 2, 0, 1).contiguous())  # HWIO -> OIHW
        bias = _leaf(weights, "bias") if config.get("use_bias", True) else None
        self.bias = nn.Parameter(bias) if bias is not None else None
        self.stride = tuple(config.get("strides", (1, 1)))
        self.dilation = tuple(config.get("dilation_rate", (1, 1)))
        self.groups = int(config.get("groups", 1))
        self.same = config.get("padding", "valid") == "same"
        self.act = _activation(config.get("activation", "linear"))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = inputs[0]
        padding: tuple[int, int] = (0, 0)
        if self.same:
            kh, kw = self.weight.shape[2:]
            top, bottom = _same_padding(x.shape[2], kh, self.stride[0], self.dilation[0])
            left, right = _same_padding(x.shape[3], kw, self.stride[1], self.dilation[1])
            if top == bottom and left == right:  # the common case: no padded copy
                padding = (top, left)
            else:
                x = F.pad(x, (left, right, top, bottom))
        x = F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return self.act(x)


class Dense(nn.Module):
    def __init__(self, config: dict[str, Any], weights: Weights) -> None:
        super().__init__()
        kernel = _leaf(weights, "kernel")
        assert kernel is not None, "Dense without a kernel"
        self.weight = nn.Parameter(kernel.t().contiguous())  # (in, out) -> (out, in)
        bias = _leaf(weights, "bias") if config.get("use_bias", True) else None
        self.bias = nn.Parameter(bias) if bias is not None else None
        self.act = _activation(config.get("activation", "linear"))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.act(F.linear(inputs[0], self.weight, self.bias))


class Normalization(nn.Module):
    """BatchNormalization (inference statistics), InstanceNormalization (tfa) and
    LayerNormalization over one channel-last axis, with Keras' epsilons."""

    def __init__(self, kind: str, config: dict[str, Any], weights: Weights) -> None:
        super().__init__()
        self.kind, self.eps = kind, float(config.get("epsilon", 1e-3))
        axis = config.get("axis", -1)
        self.axis = int(axis[0] if isinstance(axis, list) else axis)
        gamma, beta = _leaf(weights, "gamma"), _leaf(weights, "beta")
        self.gamma = nn.Parameter(gamma) if gamma is not None else None
        self.beta = nn.Parameter(beta) if beta is not None else None
        self.moving_mean: torch.Tensor | None
        self.moving_variance: torch.Tensor | None
        for name in ("moving_mean", "moving_variance"):
            self.register_buffer(name, _leaf(weights, name))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = inputs[0]
        dim = torch_axis(self.axis, x.dim())
        shape = [1] * x.dim()
        shape[dim] = x.shape[dim]
        if self.kind == "instance" and dim == 1 and x.dim() == 4:  # one fused kernel
            return F.instance_norm(x, weight=self.gamma, bias=self.beta, eps=self.eps)
        if self.kind == "batch":
            assert self.moving_mean is not None and self.moving_variance is not None
            mean, var = self.moving_mean.view(shape), self.moving_variance.view(shape)
        else:
            reduce = (
                [d for d in range(1, x.dim()) if d != dim] if self.kind == "instance" else [dim]
            )
            mean = x.mean(dim=reduce, keepdim=True)
            var = x.var(dim=reduce, keepdim=True, unbiased=False)
        x = (x - mean) / torch.sqrt(var + self.eps)
        if self.gamma is not None:
            x = x * self.gamma.view(shape)
        if self.beta is not None:
            x = x + self.beta.view(shape)
        return x


class Lambda(nn.Module):
    """A weightless op given as a function of the input list (and keyword tensors)."""

    def __init__(self, function: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, inputs: list[torch.Tensor], **kwargs: Any) -> torch.Tensor:
        return self.function(inputs, **kwargs)


class PReLU(nn.Module):
    """Keras PReLU: alpha stored (H, W, C) per position, or (1, 1, C) with
    shared_axes [1, 2]; for a vector input, (C,)."""

    def __init__(self, config: dict[str, Any], weights: Weights) -> None:
        super().__init__()
        alpha = _leaf(weights, "alpha")
        assert alpha is not None, "PReLU without alpha"
        self.alpha = nn.Parameter(alpha.permute(2, 0, 1) if alpha.dim() == 3 else alpha)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = inputs[0]
        # alpha in x's dtype: an fp32 alpha would promote an fp16 (autocast) x to fp32
        return torch.where(x >= 0, x, self.alpha.to(x.dtype) * x)


class AdaIN(nn.Module):
    """FaceDancer's AdaIN: gamma and beta from two Dense layers of w, no normalisation,
    no "1 +" (the preceding InstanceNormalization normalises). Weights by position."""

    def __init__(self, config: dict[str, Any], weights: Weights) -> None:
        super().__init__()
        if len(weights) != 4:
            raise KerasOpError(f"AdaIN expects 4 arrays, found {len(weights)}")
        arrays = [torch.from_numpy(np.asarray(a, np.float32)) for _, a in weights]
        self.gamma_weight, self.gamma_bias = nn.Parameter(arrays[0].t()), nn.Parameter(arrays[1])
        self.beta_weight, self.beta_bias = nn.Parameter(arrays[2].t()), nn.Parameter(arrays[3])

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x, w = inputs
        gamma = F.linear(w, self.gamma_weight, self.gamma_bias)[:, :, None, None]
        beta = F.linear(w, self.beta_weight, self.beta_bias)[:, :, None, None]
        return gamma * x + beta


__all__ = [
    "AdaIN",
    "Conv2D",
    "Dense",
    "KerasOpError",
    "Lambda",
    "Normalization",
    "PReLU",
    "torch_axis",
]
