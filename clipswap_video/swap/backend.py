"""The swap backend interface.

A backend prepares the source once, then swaps batches of aligned target
crops on its device; batching, compositing, tracking and I/O are not its
business (the engine and the stage do those). The backends import this
module, never the other way round; clipswap_video.swap.backends names and
builds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from clipswap_video.faces import AlignmentName, SourceIdentity


@dataclass(frozen=True)
class CropBatch:
    """Aligned target crops (N, 3, S, S), float RGB pixel values 0..255 on the
    backend's device; S = the backend's crop size."""

    crops: torch.Tensor


@dataclass(frozen=True)
class SwappedBatch:
    """The swapped crops (N, 3, S, S), float 0..255 on the device and not yet
    clipped (the reference clips only the final frame), the target's 68
    landmarks (N, 68, 2) in crop pixels when the backend found them anyway, and
    (N, S, S) bool where each crop must keep the frame, when mask models ran."""

    crops: torch.Tensor
    landmarks_68: np.ndarray | None = None
    hidden: np.ndarray | None = None


class SwapBackend(Protocol):
    """What the engine and the stage need from a backend."""

    name: str
    crop_size: int
    alignment: AlignmentName
    """The template the engine's crops are aligned to (faces.align): "arcface"
    for networks trained on ArcFace-aligned crops, "insightface" for inswapper."""
    device: torch.device

    def prepare_source(self, identity: SourceIdentity) -> None:
        """Computes whatever the source contributes, once per job."""
        ...

    def swap(self, batch: CropBatch) -> SwappedBatch:
        """Swaps the source into every crop of the batch."""
        ...


__all__ = [
    "CropBatch",
    "SwapBackend",
    "SwappedBatch",
]
