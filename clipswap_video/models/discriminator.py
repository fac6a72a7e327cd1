"""FaceDancer's discriminator (Rosberg et al., WACV 2023; networks/discriminator.py)
as plain torch modules: docs/models.md, section 4.
The layers are those `training_specs.discriminator_config` writes, at any width.

    critic = Discriminator()
    logit = critic(image)  # (N,3,256,256) in [-1,1] -> (N,1), one logit per image
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.models.generator import SLOPE, conv, instance_norm, keras_order
from clipswap_video.models.training_specs import discriminator_config


class DownBlock(nn.Module):
    """DownD: IN -> LReLU -> Conv3x3 -> AvgPool2 -> IN -> LReLU -> Conv3x3, plus a
    pooled 1x1 skip."""

    def __init__(self, *, cin: int, cout: int) -> None:
        super().__init__()
        self.to_skip = conv(cin, cout, 1)
        self.norm1 = instance_norm(cin)
        self.conv1 = conv(cin, cout, 3)
        self.norm2 = instance_norm(cout)
        self.conv2 = conv(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.avg_pool2d(self.to_skip(x), 2)
        main = F.avg_pool2d(self.conv1(F.leaky_relu(self.norm1(x), SLOPE)), 2)
        return self.conv2(F.leaky_relu(self.norm2(main), SLOPE)) + skip

    def keras_order(self) -> list[nn.Module]:
        return [self.to_skip, self.norm1, self.conv1, self.norm2, self.conv2]


class Discriminator(nn.Module):
    """Conv3x3, one DownBlock per entry of `channels`, a 'valid' conv over the whole
    remaining map, LReLU, Conv1x1 to one logit."""

    def __init__(
        self,
        *,
        image_size: int = 256,
        first: int = 64,
        channels: tuple[int, ...] = (128, 256, 512, 512, 512, 512),
    ) -> None:
        super().__init__()
        self.image_size, self.first, self.channels = image_size, first, tuple(channels)
        widths = [first, *channels]
        self.stem = conv(3, first, 3)
        self.blocks = nn.ModuleList(DownBlock(cin=a, cout=b) for a, b in pairwise(widths))
        side = image_size >> len(channels)
        self.to_features = nn.Conv2d(channels[-1], channels[-1], side)  # 'valid': side -> 1
        self.to_logit = conv(channels[-1], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        for block in self.blocks:
            x = block(x)
        x = self.to_logit(F.leaky_relu(self.to_features(x), SLOPE))
        return x.flatten(1)  # Keras Reshape((1,))

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> weighted submodule, as `discriminator_config` names them."""
        _, shapes = discriminator_config(self.image_size, self.first, self.channels)
        modules = keras_order(self.stem, *self.blocks, self.to_features, self.to_logit)
        return dict(zip(shapes, modules, strict=True))


__all__ = ["Discriminator", "DownBlock"]
