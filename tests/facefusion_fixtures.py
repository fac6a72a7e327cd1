"""FaceFusion's swappers and converters as stand-ins (clipswap_video/bench/onnx_standins.py)
written for a listed model, and what a swapper outputs, computed without onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clipswap_video.bench.onnx_standins import converter_matrix, swapper_arrays, write_converter
from clipswap_video.bench.onnx_standins import write_swapper as write_standin
from clipswap_video.swap.onnx_models import OnnxSwapperModel


def write_swapper(
    path: Path, model: OnnxSwapperModel, *, batch: int | str = "N", size: int | None = None
) -> Path:
    """The stand-in for `model` (`size`: another crop side, for a wrong file)."""
    source = model.source_size if model.source == "image" else 0
    return write_standin(path, size or model.crop_size, source_size=source, batch=batch)


def swapper_reference(model: OnnxSwapperModel, crops: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The stand-in's output, in 0..255, for (N, 3, S, S) crops in 0..255 and the
    model's `source` input, with the model's normalisation on the way in and out."""
    arrays = swapper_arrays()
    mean = np.asarray(model.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(model.std, np.float32).reshape(1, 3, 1, 1)
    blob = torch.from_numpy(((crops / 255.0 - mean) / std).astype(np.float32))
    convolved = F.conv2d(blob, torch.from_numpy(arrays["conv"]), padding=1).numpy()
    if model.source == "image":
        per_channel = source.mean(axis=(2, 3), keepdims=True) * arrays["gain"]
    else:
        per_channel = (source @ arrays["mix"]).reshape(-1, 3, 1, 1)
    output = convolved + per_channel
    if model.output_normalised:
        output = output * std + mean
    return np.asarray(output * 255.0)


__all__ = [
    "converter_matrix",
    "swapper_arrays",
    "swapper_reference",
    "write_converter",
    "write_swapper",
]
