"""Generator figures for `clipswap-video bench`: forward throughput of the
full-size FaceDancer/ClipSwap generator graph (random weights, the released
files' topology and size) run by the Keras interpreter, in faces per second."""

from __future__ import annotations

import time
from typing import Any

import torch

from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config, random_weights
from clipswap_video.models.keras_h5 import KerasGraph

BATCHES = (1, 4, 8)


def generator_figures(repeats: int = 2) -> dict[str, Any]:
    """Faces per second at batch 1, 4 and 8, fp32 on this CPU (best of `repeats`)."""
    config, shapes = generator_config(GeneratorSpec())
    model = KerasGraph(config, random_weights(shapes)).eval()
    results: dict[str, Any] = {"generator_parameters": sum(p.numel() for p in model.parameters())}
    with torch.inference_mode():
        model(torch.zeros(1, 3, 256, 256), torch.zeros(1, 512))  # warm-up: allocator, kernels
        for batch in BATCHES:
            image, z = torch.rand(batch, 3, 256, 256) * 2 - 1, torch.randn(batch, 512)
            best = min(_timed(model, image, z) for _ in range(repeats))
            results[f"generator_faces_per_s_b{batch}"] = round(batch / best, 2)
    return results


def _timed(model: KerasGraph, image: torch.Tensor, z: torch.Tensor) -> float:
    started = time.perf_counter()
    model(image, z)
    return time.perf_counter() - started


__all__ = ["BATCHES", "generator_figures"]
