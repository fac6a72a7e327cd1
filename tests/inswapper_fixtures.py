"""The inswapper_128.onnx stand-in (clipswap_video/bench/onnx_standins.py) and what it
outputs, computed without onnxruntime."""

from __future__ import annotations

import numpy as np

from clipswap_video.bench.onnx_standins import swapper_arrays as inswapper_arrays
from clipswap_video.bench.onnx_standins import write_inswapper


def inswapper_reference(crops: np.ndarray, latent: np.ndarray, seed: int = 0) -> np.ndarray:
    """The stand-in's output for (N, 3, 128, 128) crops in [0, 1] and a (1, 512) latent."""
    import torch
    import torch.nn.functional as F

    arrays = inswapper_arrays(seed)
    convolved = F.conv2d(torch.from_numpy(crops), torch.from_numpy(arrays["conv"]), padding=1)
    mixed = (latent @ arrays["mix"]).reshape(-1, 3, 1, 1)
    return np.asarray(convolved.numpy() + mixed)


__all__ = ["inswapper_arrays", "inswapper_reference", "write_inswapper"]
