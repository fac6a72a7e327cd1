"""Swap backends behind one interface, compositing, and the pipeline's swap stage.

The public names are loaded on first use (PEP 562), as in clipswap_video.faces:
the backends and the engine import torch, which asking which swapper `auto` is
(swap.choice: `weights list`, `doctor`) should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "backend": ["CropBatch", "SwapBackend", "SwappedBatch"],
    "backends": ["create_backend", "list_backends"],
    "choice": ["resolve_swapper"],
    "engine": ["AUTO_BATCH_SIZE", "FrameSwap", "SwapEngine"],
    "stage": ["FaceSwapper", "FrameFaces", "SwapStage"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from clipswap_video.swap.backend import CropBatch, SwapBackend, SwappedBatch
    from clipswap_video.swap.backends import create_backend, list_backends
    from clipswap_video.swap.choice import resolve_swapper
    from clipswap_video.swap.engine import AUTO_BATCH_SIZE, FrameSwap, SwapEngine
    from clipswap_video.swap.stage import FaceSwapper, FrameFaces, SwapStage


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULE_OF[name]}")
    return getattr(module, name)


__all__ = [
    "AUTO_BATCH_SIZE",
    "CropBatch",
    "FaceSwapper",
    "FrameFaces",
    "FrameSwap",
    "SwapBackend",
    "SwapEngine",
    "SwapStage",
    "SwappedBatch",
    "create_backend",
    "list_backends",
    "resolve_swapper",
]
