"""ResNet50 v1 as `keras.applications.ResNet50` builds it, in torch.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), in the
Keras (Caffe-style) variant that ArcFace-Res50.h5 and RetinaFace-Res50.h5 nest
(docs/models.md, section 2): the stride sits on
the first 1x1 conv and on the 1x1 projection (torchvision puts it on the 3x3),
every conv has a bias, BN epsilon is 1.001e-5, and the stem pads explicitly
(ZeroPadding2D(3) + 7x7/2 'valid', ZeroPadding2D(1) + max-pool 3x3/2 'valid').

Submodules carry the Keras layer names (`conv1_conv`, `conv2_block1_0_conv`,
..., `conv5_block3_3_bn`; `keras_layers()` lists them), so a loader fills the
network by name with `load_keras_weights`:

    net = ResNet50()
    load_keras_weights(net.keras_layers(), weights["resnet50"], owner="resnet50")
    features = net(images_nchw, outputs=("conv3_block4_out", "conv5_block3_out"))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.errors import CorruptWeightsError

KERAS_BN_EPS = 1.001e-5
"""keras.applications ResNet's BatchNormalization epsilon (not Keras' 1e-3)."""

KerasArrays = Iterable[tuple[str, np.ndarray]]
"""(full Keras weight name such as `conv1_bn/gamma:0`, array) pairs."""


class Bottleneck(nn.ModuleDict):
    """One `convS_blockB` block, its layers keyed by the Keras suffix.

    Keys `0_conv`/`0_bn` (projection shortcut, first block of a stage only),
    `1_conv`/`1_bn` (1x1, carries the stride), `2_conv`/`2_bn` (3x3 'same'),
    `3_conv`/`3_bn` (1x1 expansion to 4x width).
    """

    def __init__(
        self,
        *,
        dim_in: int,
        width: int,
        stride: int,
        project: bool,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        dd: dict[str, Any] = {"device": device, "dtype": dtype}
        dim_out = 4 * width
        layers: dict[str, nn.Module] = {}
        if project:
            layers["0_conv"] = nn.Conv2d(dim_in, dim_out, 1, stride, **dd)
            layers["0_bn"] = nn.BatchNorm2d(dim_out, KERAS_BN_EPS, 0.01, **dd)
        layers["1_conv"] = nn.Conv2d(dim_in, width, 1, stride, **dd)
        layers["1_bn"] = nn.BatchNorm2d(width, KERAS_BN_EPS, 0.01, **dd)
        layers["2_conv"] = nn.Conv2d(width, width, 3, 1, 1, **dd)
        layers["2_bn"] = nn.BatchNorm2d(width, KERAS_BN_EPS, 0.01, **dd)
        layers["3_conv"] = nn.Conv2d(width, dim_out, 1, **dd)
        layers["3_bn"] = nn.BatchNorm2d(dim_out, KERAS_BN_EPS, 0.01, **dd)
        super().__init__(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self["0_bn"](self["0_conv"](x)) if "0_conv" in self else x
        x = F.relu(self["1_bn"](self["1_conv"](x)))
        x = F.relu(self["2_bn"](self["2_conv"](x)))
        x = self["3_bn"](self["3_conv"](x))
        return F.relu(x + shortcut)  # the Keras `convS_blockB_out` activation


class ResNet50(nn.Module):
    """Keras ResNet50 v1 without its top; NCHW input, no preprocessing inside.

    Args:
        blocks: blocks per stage conv2..conv5 ((3, 4, 6, 3) is ResNet50).
        widths: bottleneck widths per stage; each stage outputs 4x its width.
        in_channels: image channels.
    """

    def __init__(
        self,
        *,
        blocks: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        in_channels: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd: dict[str, Any] = {"device": device, "dtype": dtype}
        self.conv1_conv = nn.Conv2d(in_channels, widths[0], 7, 2, 3, **dd)  # = ZeroPadding2D(3)
        self.conv1_bn = nn.BatchNorm2d(widths[0], KERAS_BN_EPS, 0.01, **dd)
        self.blocks = nn.ModuleDict()
        self.out_channels = {"conv1_relu": widths[0], "pool1_pool": widths[0]}
        """Channels of every output `forward` can return, by Keras name."""
        dim = widths[0]
        for stage, (count, width) in enumerate(zip(blocks, widths, strict=True), start=2):
            for index in range(1, count + 1):
                first = index == 1
                stride = 2 if first and stage > 2 else 1  # conv2 follows the max-pool
                self.blocks[f"conv{stage}_block{index}"] = Bottleneck(
                    dim_in=dim, width=width, stride=stride, project=first, **dd
                )
                dim = 4 * width
                self.out_channels[f"conv{stage}_block{index}_out"] = dim

    @property
    def output_names(self) -> list[str]:
        """Every tensor `forward` can return, in graph order (Keras names)."""
        return list(self.out_channels)

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> the torch module holding that layer's weights."""
        layers: dict[str, nn.Module] = {"conv1_conv": self.conv1_conv, "conv1_bn": self.conv1_bn}
        for name, block in self.blocks.items():
            layers.update({f"{name}_{suffix}": module for suffix, module in block.named_children()})
        return layers

    def forward(
        self, x: torch.Tensor, outputs: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """The requested tensors by Keras name (default: the last block's output).

        Stops after the last requested stage, so asking for conv3 only is cheap.
        """
        wanted = list(outputs) if outputs is not None else [self.output_names[-1]]
        unknown = [name for name in wanted if name not in self.output_names]
        if unknown:
            raise ValueError(f"unknown ResNet outputs {unknown}; known: {self.output_names}")
        found: dict[str, torch.Tensor] = {}
        x = F.relu(self.conv1_bn(self.conv1_conv(x)))
        found["conv1_relu"] = x
        # ZeroPadding2D(1) then a 'valid' pool: zeros, not -inf (same after the ReLU).
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
        found["pool1_pool"] = x
        for name, block in self.blocks.items():
            if all(key in found for key in wanted):
                break
            x = block(x)
            found[f"{name}_out"] = x
        return {name: found[name] for name in wanted}


def load_keras_weights(layers: Mapping[str, nn.Module], arrays: KerasArrays, *, owner: str) -> None:
    """Fills Conv2d / BatchNorm2d / Linear modules from Keras arrays, by name.

    Each array's layer is the path component that names a module in `layers`
    (so `resnet50/conv1_bn/gamma:0` and `conv1_bn/gamma:0` both work); leaves
    are matched by name (kernel, bias, gamma, beta, moving_mean, moving_variance),
    never by position, as frozen layers move arrays to the non-trainable part.

    Raises:
        CorruptWeightsError: an array with no module, a shape mismatch, or a
            module left without weights; `owner` (the file or layer) is named.
    """
    filled: dict[str, set[str]] = {name: set() for name in layers}
    for full_name, array in arrays:
        parts = full_name.split("/")
        layer = next((part for part in parts if part in layers), None)
        if layer is None:
            raise CorruptWeightsError(f"{owner}: weight {full_name!r} belongs to no known layer")
        leaf = parts[-1].split(":")[0]
        _assign(layers[layer], leaf, array, f"{owner}: {full_name}")
        filled[layer].add(leaf)
    for name, module in layers.items():
        missing = sorted(_expected_leaves(module) - filled[name])
        if missing:
            raise CorruptWeightsError(f"{owner}: layer {name!r} lacks {', '.join(missing)}")


_TORCH_NAMES = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def _assign(module: nn.Module, leaf: str, array: np.ndarray, where: str) -> None:
    if leaf not in _TORCH_NAMES or not hasattr(module, _TORCH_NAMES[leaf]):
        raise CorruptWeightsError(f"{where}: no {leaf!r} in a {type(module).__name__}")
    target = getattr(module, _TORCH_NAMES[leaf])
    value = torch.from_numpy(np.ascontiguousarray(array, np.float32))
    if leaf == "kernel":
        value = value.permute(3, 2, 0, 1) if value.dim() == 4 else value.t()  # HWIO / (in, out)
    if target is None or tuple(target.shape) != tuple(value.shape):
        shape = None if target is None else tuple(target.shape)
        raise CorruptWeightsError(f"{where}: shape {tuple(value.shape)}, expected {shape}")
    with torch.no_grad():
        target.copy_(value)


def _expected_leaves(module: nn.Module) -> set[str]:
    if isinstance(module, nn.BatchNorm2d):
        leaves = {"moving_mean", "moving_variance"}
        return leaves | ({"gamma", "beta"} if module.affine else set())
    return {"kernel"} | ({"bias"} if getattr(module, "bias", None) is not None else set())


__all__ = ["KERAS_BN_EPS", "Bottleneck", "ResNet50", "load_keras_weights"]
