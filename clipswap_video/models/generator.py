"""FaceDancer's generator (Rosberg et al., "FaceDancer: Pose- and Occlusion-Aware
High Fidelity Face Swapping", WACV 2023) as plain torch modules, for training and
reading; ClipSwap uses the same layers. Topology and every up_type:
docs/models.md, section 1.

Unlike the graph interpreter (`keras_h5.KerasGraph`), this is code a person can
change; `keras_layers()` names each weighted submodule as Keras did, so
`create_model(path, impl="modules")` fills it from the released .h5 files.

    generator = FaceDancerGenerator(GeneratorSpec())
    swapped = generator(target, z)  # (N,3,256,256) in [-1,1], (N,512) -> linear (N,3,256,256)
"""

from __future__ import annotations

from itertools import pairwise
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from clipswap_video.errors import ConfigValueError
from clipswap_video.models.facedancer_spec import UP_TYPES, GeneratorSpec, generator_config

SLOPE = 0.2  # every LeakyReLU of FaceDancer / ClipSwap


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """tensorflow-addons InstanceNormalization: affine, epsilon 1e-3 (not torch's 1e-5)."""
    return nn.InstanceNorm2d(channels, eps=1e-3, affine=True)


def conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    """Keras Conv2D, stride 1, padding 'same' (symmetric for odd kernels), with bias."""
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Keras UpSampling2D(interpolation='bilinear'): x2 with half-pixel centres."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@runtime_checkable
class KerasOrdered(Protocol):
    """A block that lists its weighted submodules in the order the Keras model code
    created their layers, which is what Keras' automatic names (conv2d_7) count."""

    def keras_order(self) -> list[nn.Module]: ...


def keras_order(*blocks: nn.Module) -> list[nn.Module]:
    """The weighted layers of `blocks` in Keras creation order; a plain layer is itself."""
    ordered: list[nn.Module] = []
    for block in blocks:
        ordered.extend(block.keras_order() if isinstance(block, KerasOrdered) else [block])
    return ordered


class Mapping(nn.Module):
    """z -> w: [Dense -> LeakyReLU] x (depth - 1) -> Dense (linear); depth 0 is w = z."""

    def __init__(self, *, z_dim: int, depth: int, dim: int) -> None:
        super().__init__()
        widths = [z_dim] + [dim] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            z = layer(z)
            if index < len(self.layers) - 1:
                z = F.leaky_relu(z, SLOPE)
        return z

    def keras_order(self) -> list[nn.Module]:
        return list(self.layers)


class AdaIN(nn.Module):
    """FaceDancer's AdaIN: gamma * x + beta, both Dense layers of w. No normalisation
    and no "1 +" inside: the InstanceNorm before it normalises."""

    def __init__(self, *, style_dim: int, channels: int) -> None:
        super().__init__()
        self.to_gamma = nn.Linear(style_dim, channels)
        self.to_beta = nn.Linear(style_dim, channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.to_gamma(w)[:, :, None, None] * x + self.to_beta(w)[:, :, None, None]


class ResDown(nn.Module):
    """IN -> LReLU -> Conv3x3 (one conv only), plus a 1x1 skip; both average-pooled
    by 2 when `resample`."""

    def __init__(self, *, cin: int, cout: int, resample: bool) -> None:
        super().__init__()
        self.resample = resample
        self.to_skip = conv(cin, cout, 1)
        self.norm = instance_norm(cin)
        self.conv = conv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.to_skip(x)
        main = self.conv(F.leaky_relu(self.norm(x), SLOPE))
        if self.resample:
            skip, main = F.avg_pool2d(skip, 2), F.avg_pool2d(main, 2)
        return main + skip

    def keras_order(self) -> list[nn.Module]:
        return [self.to_skip, self.norm, self.conv]


class ResUp(nn.Module):
    """IN -> AdaIN(w) -> LReLU -> Conv3x3, plus a 1x1 skip; both upsampled x2 when
    `resample`."""

    def __init__(self, *, cin: int, cout: int, style_dim: int, resample: bool) -> None:
        super().__init__()
        self.resample = resample
        self.to_skip = conv(cin, cout, 1)
        self.norm = instance_norm(cin)
        self.style = AdaIN(style_dim=style_dim, channels=cin)
        self.conv = conv(cin, cout, 3)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        skip = self.to_skip(x)
        main = self.conv(F.leaky_relu(self.style(self.norm(x), w), SLOPE))
        if self.resample:
            skip, main = upsample(skip), upsample(main)
        return main + skip

    def keras_order(self) -> list[nn.Module]:
        return [self.to_skip, self.norm, self.style, self.conv]


class MaskHead(nn.Module):
    """Conv3x3 -> LReLU -> IN (activation before the norm) -> Conv1x1 -> sigmoid."""

    def __init__(self, *, cin: int, hidden: int, cout: int) -> None:
        super().__init__()
        self.to_hidden = conv(cin, hidden, 3)
        self.norm = instance_norm(hidden)
        self.to_mask = conv(hidden, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.norm(F.leaky_relu(self.to_hidden(x), SLOPE))
        return torch.sigmoid(self.to_mask(hidden))

    def keras_order(self) -> list[nn.Module]:
        return [self.to_hidden, self.norm, self.to_mask]


def blend(mask: torch.Tensor, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Keras AdaptiveAttention: mask -> 1 keeps the identity-conditioned decoder
    feature x, mask -> 0 the target's encoder feature."""
    return (1 - mask) * skip + mask * x


class Merge(nn.Module):
    """The weightless ways a level joins the encoder skip and the decoder feature."""

    def __init__(self, up_type: str) -> None:
        super().__init__()
        self.up_type = up_type

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.up_type == "concat":
            return torch.cat([skip, x], dim=1)
        if self.up_type == "add":
            return skip + x
        return x  # no_skip: the encoder feature is unused

    def keras_order(self) -> list[nn.Module]:
        return []


class Attention(nn.Module):
    """AFFA: blend(mask(concat(skip, x)), skip, x), hidden width skip_channels // 4."""

    def __init__(self, *, skip_channels: int, x_channels: int) -> None:
        super().__init__()
        width = skip_channels + x_channels
        self.mask = MaskHead(cin=width, hidden=skip_channels // 4, cout=skip_channels)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return blend(self.mask(torch.cat([skip, x], dim=1)), skip, x)

    def keras_order(self) -> list[nn.Module]:
        return keras_order(self.mask)


class DoubleAttention(nn.Module):
    """d_affa: a second AFFA applied to the first one's output."""

    def __init__(self, *, skip_channels: int, x_channels: int) -> None:
        super().__init__()
        self.first = Attention(skip_channels=skip_channels, x_channels=x_channels)
        self.second = Attention(skip_channels=skip_channels, x_channels=skip_channels)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.second(skip, self.first(skip, x))

    def keras_order(self) -> list[nn.Module]:
        return keras_order(self.first, self.second)


class DualMaskAttention(nn.Module):
    """do_affa: a per-channel mask times a one-channel mask (hidden width skip_channels)."""

    def __init__(self, *, skip_channels: int, x_channels: int) -> None:
        super().__init__()
        width = skip_channels + x_channels
        self.spatial_mask = MaskHead(cin=width, hidden=skip_channels, cout=1)
        self.channel_mask = MaskHead(cin=width, hidden=skip_channels, cout=skip_channels)

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([skip, x], dim=1)
        return blend(self.channel_mask(joined) * self.spatial_mask(joined), skip, x)

    def keras_order(self) -> list[nn.Module]:  # Keras builds the `_hat` (one-channel) mask first
        return keras_order(self.spatial_mask, self.channel_mask)


def make_merge(up_type: str, skip_channels: int, x_channels: int) -> tuple[nn.Module, int]:
    """A level's merge module and the channels it hands to the ResUp (reference 1.5)."""
    attention = {"affa": Attention, "d_affa": DoubleAttention, "do_affa": DualMaskAttention}
    if up_type in attention:
        merge = attention[up_type](skip_channels=skip_channels, x_channels=x_channels)
        return merge, skip_channels
    if up_type not in UP_TYPES:
        raise ConfigValueError(f"unknown up_type {up_type!r}; known: {', '.join(UP_TYPES)}")
    widths = {"concat": skip_channels + x_channels, "add": skip_channels, "no_skip": x_channels}
    return Merge(up_type), widths[up_type]


class UpLevel(nn.Module):
    """One decoder level: merge the encoder skip into x, then a ResUp."""

    def __init__(self, *, merge: nn.Module, block: ResUp) -> None:
        super().__init__()
        self.merge = merge
        self.block = block

    def forward(self, skip: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.block(self.merge(skip, x), w)

    def keras_order(self) -> list[nn.Module]:
        return keras_order(self.merge, self.block)


class FaceDancerGenerator(nn.Module):
    """target (N,3,S,S) in [-1,1] and identity z (N,z_dim) -> swapped face
    (N,3,S,S), linear output (not clamped)."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        if len(spec.up_types) != 6 or len(spec.channels) != 6:
            raise ConfigValueError(
                f"the generator takes 6 channels and 6 up_types, got {spec.channels} "
                f"and {spec.up_types}"
            )
        self.spec = spec
        c = spec.channels
        style_dim = spec.mapping_size if spec.mapping_depth else spec.z_dim
        self.mapping = Mapping(z_dim=spec.z_dim, depth=spec.mapping_depth, dim=spec.mapping_size)
        self.stem = conv(3, c[0], 3)
        self.encoder = nn.ModuleList(ResDown(cin=a, cout=b, resample=True) for a, b in pairwise(c))
        self.bottleneck = ResDown(cin=c[-1], cout=c[-1], resample=False)
        self.bottleneck_up = ResUp(cin=c[-1], cout=c[-1], style_dim=style_dim, resample=False)
        self.decoder = nn.ModuleList()
        x_channels = c[-1]
        levels = zip(spec.up_types, reversed(c), strict=True)
        for level, (up_type, skip_channels) in enumerate(levels):
            merge, width = make_merge(up_type, skip_channels, x_channels)
            final = level == len(spec.up_types) - 1
            x_channels = 3 if final else c[-2 - level]
            block = ResUp(cin=width, cout=x_channels, style_dim=style_dim, resample=not final)
            self.decoder.append(UpLevel(merge=merge, block=block))

    def forward(self, target: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)
        skips = [self.stem(target)]
        for block in self.encoder:
            skips.append(block(skips[-1]))
        x = self.bottleneck_up(self.bottleneck(skips[-1]), w)
        for level, skip in zip(self.decoder, reversed(skips), strict=True):
            x = level(skip, x, w)
        return x

    def keras_layers(self) -> dict[str, nn.Module]:
        """Keras layer name -> weighted submodule. Keras numbers unnamed layers in the
        order the model code creates them; `generator_config` replays that order."""
        _, shapes = generator_config(self.spec)
        modules = keras_order(
            self.mapping,
            self.stem,
            *self.encoder,
            self.bottleneck,
            self.bottleneck_up,
            *self.decoder,
        )
        return dict(zip(shapes, modules, strict=True))


__all__ = [
    "AdaIN",
    "Attention",
    "DoubleAttention",
    "DualMaskAttention",
    "FaceDancerGenerator",
    "GeneratorSpec",
    "KerasOrdered",
    "Mapping",
    "MaskHead",
    "Merge",
    "ResDown",
    "ResUp",
    "UpLevel",
    "conv",
    "instance_norm",
    "keras_order",
]
