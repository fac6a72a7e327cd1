"""Swap backends behind one interface, compositing, and the pipeline's swap stage."""

from clipswap_video.swap.backend import CropBatch, SwapBackend, SwappedBatch
from clipswap_video.swap.backends import create_backend, list_backends, resolve_swapper
from clipswap_video.swap.engine import AUTO_BATCH_SIZE, FrameSwap, SwapEngine
from clipswap_video.swap.stage import FaceSwapper, SwapStage

__all__ = [
    "AUTO_BATCH_SIZE",
    "CropBatch",
    "FaceSwapper",
    "FrameSwap",
    "SwapBackend",
    "SwapEngine",
    "SwapStage",
    "SwappedBatch",
    "create_backend",
    "list_backends",
    "resolve_swapper",
]
