"""Swap-model figures for `clipswap-video bench`: per swapper, faces per second of
the model alone (its backend's `swap` on crops at the engine's automatic batch
size) and of the whole job on the demo clip once its models are loaded, and
their ratio; then pixel boost
1..4 as the model-alone cost per face relative to no boost.

With `weights_dir` the user's files are timed. Without it the models are the
stand-ins of bench/onnx_standins.py, which cost next to nothing: the figures are
then those of the pipeline around a model (the most faces per second the engine
can feed one), not of any real model.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from clipswap_video.bench.onnx_standins import (
    write_converter,
    write_inswapper,
    write_recogniser,
    write_swapper,
)
from clipswap_video.config import Settings, load_settings
from clipswap_video.demo import DemoMedia
from clipswap_video.pipeline import run_video
from clipswap_video.swap import CropBatch
from clipswap_video.swap.engine import AUTO_BATCH_SIZE
from clipswap_video.swap.onnx_models import MODELS
from clipswap_video.swap.stage import FaceSwapper

SWAPPERS = ("inswapper", "onnx:simswap_256", "onnx:hyperswap_1a_256", "onnx:uniface_256")
"""One of each kind of source input: emap latent, converted embedding, unit
embedding, source image."""
BOOSTS = (1, 2, 3, 4)
MIN_TIMED_S = 1.0


def write_standins(folder: Path) -> Path:
    """Stand-ins for every swapper of `SWAPPERS` in `folder`, as a FaceFusion
    models folder holds them."""
    write_inswapper(folder / "inswapper_128.onnx")
    write_recogniser(folder / "arcface_w600k_r50.onnx")
    for name in SWAPPERS:
        if name.startswith("onnx:"):
            model = MODELS[name.removeprefix("onnx:")]
            source = model.source_size if model.source == "image" else 0
            write_swapper(folder / f"{model.name}.onnx", model.crop_size, source_size=source)
            for converter in model.converters[:1]:
                write_converter(folder / f"{converter.removeprefix('facefusion.')}.onnx")
    return folder


def swapper_figures(
    clip: DemoMedia,
    folder: Path,
    weights_dir: Path | None = None,
    swappers: tuple[str, ...] = SWAPPERS,
    boosts: tuple[int, ...] = BOOSTS,
    min_timed_s: float = MIN_TIMED_S,
) -> dict[str, Any]:
    """Per swapper: model-alone and end-to-end faces/s and their ratio; for the
    first swapper, the cost of each pixel boost per face."""
    weights = weights_dir or write_standins(folder / "standins")
    results: dict[str, Any] = {"swappers_files": str(weights_dir) if weights_dir else "stand-ins"}
    for name in swappers:
        key = name.removeprefix("onnx:")
        settings = _settings(name)
        alone = _model_alone(settings, clip, weights, min_timed_s)
        end_to_end = _end_to_end(settings, clip, folder / f"{key}.mp4", weights)
        results[f"{key}_model_faces_per_s"] = alone
        results[f"{key}_e2e_faces_per_s"] = round(end_to_end, 2)
        results[f"{key}_e2e_vs_model"] = round(end_to_end / alone, 3)
    first = _settings(swappers[0])
    plain = _model_alone(first, clip, weights, min_timed_s)
    for factor in boosts[1:]:
        boosted = replace(first, swap=replace(first.swap, pixel_boost=factor))
        cost = plain / _model_alone(boosted, clip, weights, min_timed_s)
        results[f"pixel_boost_{factor}_cost"] = round(cost, 2)
    return results


def _settings(name: str) -> Settings:
    swapper, _, model = name.partition(":")
    return load_settings(overrides=[f"swap.swapper={swapper}", f"swap.model={model}"])


def _end_to_end(settings: Settings, clip: DemoMedia, output: Path, weights: Path) -> float:
    """Faces per second of the job, from its first frame (the models loaded) to its end."""
    started: list[float] = []

    def on_start(frames: int | None) -> None:
        started.append(time.perf_counter())

    result = run_video(
        clip.source_image, clip.video, output, settings, weights_dir=weights, on_start=on_start
    )
    swapped = result.coverage.faces_swapped if result.coverage else 0
    return swapped / (time.perf_counter() - started[0])


def _model_alone(settings: Settings, clip: DemoMedia, weights: Path, min_timed_s: float) -> float:
    """Faces per second of the backend's `swap` alone, the best of calls over at
    least `min_timed_s`, after a warm-up call."""
    backend = FaceSwapper(settings, [clip.source_image], weights).backend
    batch = settings.swap.batch_size or AUTO_BATCH_SIZE.get(backend.device.type, 1)
    crops = torch.rand(batch, 3, backend.crop_size, backend.crop_size) * 255
    crops = crops.to(backend.device)

    def call() -> float:
        started = time.perf_counter()
        backend.swap(CropBatch(crops))
        return time.perf_counter() - started

    call()
    times = [call()]
    while sum(times) < min_timed_s:
        times.append(call())
    return round(batch / min(times), 2)


__all__ = ["BOOSTS", "SWAPPERS", "swapper_figures", "write_standins"]
