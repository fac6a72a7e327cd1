"""ClipSwap's attribute encoder `AttrEncoder` (scripts/attribute_encoder.py): the
encoder half of the StarGAN-v2 generator (Choi et al., CVPR 2020) with per-pixel
LayerNormalization, as plain torch modules. docs/models.md,
section 4; the layers are those `training_specs.attribute_encoder_config` writes.

    encoder = AttributeEncoder()
    *blocks, feature = encoder(image)  # feature: (N,512,8,8), what the attribute loss compares
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.models.generator import SLOPE, conv, keras_order
from clipswap_video.models.training_specs import attribute_encoder_config


class PixelLayerNorm(nn.LayerNorm):
    """Keras LayerNormalization(axis=-1) on an image: over the channels of each pixel
    (epsilon 1e-3), not InstanceNorm as in the StarGAN-v2 original."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """StarGAN-v2 ResBlk: (shortcut + residual) / sqrt(2); the residual's first conv
    keeps cin channels, the 1x1 shortcut (no bias) exists only when cin != cout."""

    def __init__(self, *, cin: int, cout: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.norm1 = PixelLayerNorm(cin)
        self.conv1 = conv(cin, cin, 3)
        self.norm2 = PixelLayerNorm(cin)
        self.conv2 = conv(cin, cout, 3)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(F.leaky_relu(self.norm1(x), SLOPE))
        shortcut = self.shortcut(x)
        if self.downsample:
            residual, shortcut = F.avg_pool2d(residual, 2), F.avg_pool2d(shortcut, 2)
        residual = self.conv2(F.leaky_relu(self.norm2(residual), SLOPE))
        return (shortcut + residual) * (1 / math.sqrt(2))

    def keras_order(self) -> list[nn.Module]:
        weighted = [self.norm1, self.conv1, self.norm2, self.conv2]
        return weighted + ([] if isinstance(self.shortcut, nn.Identity) else [self.shortcut])


class AttributeEncoder(nn.Module):
    """Conv3x3, a downsampling ResBlock per entry of `channels`, then `extra_blocks`
    ResBlocks at the last width and size.

    Returns the stem output and every block's output, in order (the Keras model's
    outputs); the last is the 8x8 feature of a 256 input.
    """

    def __init__(
        self,
        *,
        image_size: int = 256,
        first: int = 64,
        channels: tuple[int, ...] = (128, 256, 512, 512, 512),
        extra_blocks: int = 2,
    ) -> None:
        super().__init__()
        self.image_size, self.first, self.channels = image_size, first, tuple(channels)
        self.extra_blocks = extra_blocks
        widths = [first, *channels] + [channels[-1]] * extra_blocks
        downsample = [True] * len(channels) + [False] * extra_blocks
        self.stem = conv(3, first, 3)
        self.blocks = nn.ModuleList(
            ResBlock(cin=cin, cout=cout, downsample=down)
            for (cin, cout), down in zip(pairwise(widths), downsample, strict=True)
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = [self.stem(image)]
        for block in self.blocks:
            features.append(block(features[-1]))
        return tuple(features)

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> weighted submodule, as `attribute_encoder_config` names them."""
        _, shapes = attribute_encoder_config(
            self.image_size, self.first, self.channels, self.extra_blocks
        )
        return dict(zip(shapes, keras_order(self.stem, *self.blocks), strict=True))


__all__ = ["AttributeEncoder", "PixelLayerNorm", "ResBlock"]
