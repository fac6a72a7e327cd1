"""The face-quality knobs users of the field's tools expect, as backend wrappers:
pixel boost (`swap.pixel_boost`) and swap strength (`swap.weight`).

A wrapper is a backend to the engine and the stage (same interface), so neither
knows the knobs exist: the stage aligns crops of the wrapper's size, the engine
hands it batches of them.
"""

from __future__ import annotations

import torch

from clipswap_video.config_sections import SwapSettings
from clipswap_video.faces import SourceIdentity
from clipswap_video.swap.backend import CropBatch, SwapBackend, SwappedBatch


class PixelBoost:
    """The model run on an N x N polyphase split of a crop N times its size: sub-crop
    (i, j) takes every N-th pixel from row i, column j, so each is a full face at the
    model's size, shifted by a fraction of a pixel; the swapped sub-crops are
    interleaved back. This is what FaceFusion's "pixel boost" does (docs/models.md).
    Every template here scales with the crop side, so the larger crop is aligned
    by the same rule."""

    def __init__(self, inner: SwapBackend, factor: int) -> None:
        self.inner, self.factor = inner, factor
        self.name = inner.name
        self.crop_size = inner.crop_size * factor
        self.alignment = inner.alignment
        self.device = inner.device

    def prepare_source(self, identity: SourceIdentity) -> None:
        self.inner.prepare_source(identity)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        n, crops = self.factor, batch.crops
        count, channels, size = crops.shape[0], crops.shape[1], self.inner.crop_size
        # (B, C, S*n, S*n) -> (B, C, S, n, S, n) -> (B, n, n, C, S, S): sub-crop (i, j)
        # holds pixels (y * n + i, x * n + j).
        split = crops.reshape(count, channels, size, n, size, n).permute(0, 3, 5, 1, 2, 4)
        swapped = self.inner.swap(CropBatch(split.reshape(count * n * n, channels, size, size)))
        out = swapped.crops.reshape(count, n, n, channels, size, size).permute(0, 3, 4, 1, 5, 2)
        # The sub-crops' 68 points would each be a little off; the stage measures its own.
        return SwappedBatch(out.reshape(count, channels, size * n, size * n))


class Strength:
    """The swapped crop blended with the target's own crop: weight 1 is the swap,
    0 the target unchanged."""

    def __init__(self, inner: SwapBackend, weight: float) -> None:
        self.inner, self.weight = inner, weight
        self.name = inner.name
        self.crop_size = inner.crop_size
        self.alignment = inner.alignment
        self.device = inner.device

    def prepare_source(self, identity: SourceIdentity) -> None:
        self.inner.prepare_source(identity)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        swapped = self.inner.swap(batch)
        crops = batch.crops.to(swapped.crops.dtype)
        return SwappedBatch(
            torch.lerp(crops, swapped.crops, self.weight), landmarks_68=swapped.landmarks_68
        )


def adjusted(backend: SwapBackend, settings: SwapSettings) -> SwapBackend:
    """`backend` with the knobs `settings` turns away from their defaults."""
    if settings.pixel_boost > 1:
        backend = PixelBoost(backend, settings.pixel_boost)
    if settings.weight < 1.0:
        backend = Strength(backend, settings.weight)
    return backend


__all__ = ["PixelBoost", "Strength", "adjusted"]
