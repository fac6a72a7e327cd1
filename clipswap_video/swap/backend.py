"""The swap backend interface and registry.

A backend prepares the source once, then swaps batches of aligned target
crops on its device; batching, compositing, tracking and I/O are not its
business (the engine and the stage do those). Backends register
with `@register_backend(name)` (timm's `@register_model` pattern) behind one
Protocol that mypy checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from clipswap_video._registry import Registry
from clipswap_video.config import SwapSettings
from clipswap_video.faces import SourceIdentity


@dataclass(frozen=True)
class CropBatch:
    """Aligned target crops (N, 3, S, S), float RGB pixel values 0..255 on the
    backend's device; S = the backend's crop size."""

    crops: torch.Tensor


@dataclass(frozen=True)
class SwappedBatch:
    """The swapped crops (N, 3, S, S), float 0..255 on the device and not yet
    clipped (the reference clips only the final frame), and the target's 68
    landmarks (N, 68, 2) in crop pixels when the backend found them anyway."""

    crops: torch.Tensor
    landmarks_68: np.ndarray | None = None


class SwapBackend(Protocol):
    name: str
    crop_size: int
    device: torch.device

    def prepare_source(self, identity: SourceIdentity) -> None:
        """Computes whatever the source contributes, once per job."""
        ...

    def swap(self, batch: CropBatch) -> SwappedBatch:
        """Swaps the source into every crop of the batch."""
        ...


BackendFactory = Callable[[Path | None, SwapSettings], SwapBackend]
"""Called as factory(weights_dir, settings)."""
_BACKENDS: Registry[BackendFactory] = Registry("swapper")
register_backend = _BACKENDS.register
"""Class decorator: makes a backend available as `swap.swapper = name`."""


def create_backend(
    name: str, weights_dir: Path | None = None, settings: SwapSettings | None = None
) -> SwapBackend:
    """The backend `name`, loaded. `auto` must be resolved before (see `resolve_swapper`)."""
    import clipswap_video.swap.classic
    import clipswap_video.swap.clipswap  # noqa: F401  (both register themselves)

    return _BACKENDS.get(name)(weights_dir, settings or SwapSettings())


def resolve_swapper(name: str, weights_dir: Path | None = None) -> tuple[str, str | None]:
    """The backend `auto` stands for, and the warning to print when it falls back:
    `clipswap` when its weight files are found, else `classic`."""
    from clipswap_video.swap.clipswap import find_clipswap_weights

    if name != "auto":
        return name, None
    if find_clipswap_weights(weights_dir) is not None:
        return "clipswap", None
    return "classic", (
        "using the classic swapper (landmark warp, lower fidelity): no ClipSwap weights "
        "(ClipSwap.h5 and ArcFace-Res50.h5) in the weights folders; see weights/README.md"
    )


__all__ = [
    "CropBatch",
    "SwapBackend",
    "SwappedBatch",
    "create_backend",
    "register_backend",
    "resolve_swapper",
]
