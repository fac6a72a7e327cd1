"""Generator figures for `clipswap-video bench`: forward throughput of the
full-size FaceDancer/ClipSwap generator graph (random weights, the released
files' topology and size) run by the Keras interpreter, in faces per second;
and the whole `--swapper clipswap` job on a short demo clip with that
generator, as a ratio to the generator's own batch-1 throughput."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from clipswap_video.config import load_settings
from clipswap_video.demo import write_demo_media
from clipswap_video.models.convert import save_converted
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config, random_weights
from clipswap_video.models.keras_h5 import KerasGraph
from clipswap_video.pipeline import run_video

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


def clipswap_figures(
    folder: Path,
    generator_faces_per_s: float,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (1280, 720),
) -> dict[str, Any]:
    """End-to-end faces/s of `--swapper clipswap` (full-size random generator,
    a small identity net) on a short demo clip, and its ratio to the generator
    alone in the same run: how much of the job's time the model gets."""
    weights = folder / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    config, shapes = generator_config(GeneratorSpec())
    save_converted(config, random_weights(shapes), weights / "ClipSwap.safetensors")
    identity_config, identity_shapes = _identity_net()
    save_converted(identity_config, random_weights(identity_shapes),
                   weights / "ArcFace-Res50.safetensors")  # fmt: skip
    clip = write_demo_media(folder / "clipswap_clip", seconds=seconds, width=size[0],
                            height=size[1], fps=30)  # fmt: skip
    settings = load_settings(overrides=["swap.swapper=clipswap"])
    started = time.perf_counter()
    result = run_video(clip.source_image, clip.video, folder / "clipswap.mp4", settings,
                       weights_dir=weights)  # fmt: skip
    elapsed = time.perf_counter() - started
    faces_per_s = result.frames / elapsed  # one face per demo frame
    return {
        "clipswap_e2e_faces_per_s": round(faces_per_s, 2),
        "clipswap_e2e_vs_generator": round(faces_per_s / generator_faces_per_s, 3),
    }


def _identity_net() -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A small stand-in for ArcFace-Res50 (112 px in, 512 out): its cost is paid once."""
    layers = [
        {"class_name": "InputLayer", "name": "image", "inbound_nodes": [],
         "config": {"name": "image", "batch_input_shape": [None, 112, 112, 3]}},
        {"class_name": "AveragePooling2D", "name": "pool", "inbound_nodes": [[["image", 0, 0, {}]]],
         "config": {"name": "pool", "pool_size": [8, 8], "strides": [8, 8], "padding": "valid"}},
        {"class_name": "Flatten", "name": "flatten", "inbound_nodes": [[["pool", 0, 0, {}]]],
         "config": {"name": "flatten"}},
        {"class_name": "Dense", "name": "embedding", "inbound_nodes": [[["flatten", 0, 0, {}]]],
         "config": {"name": "embedding", "units": 512, "activation": "linear"}},
    ]  # fmt: skip
    config = {"class_name": "Functional", "config": {
        "name": "identity", "layers": layers, "input_layers": [["image", 0, 0]],
        "output_layers": [["embedding", 0, 0]]}}  # fmt: skip
    shapes = {"embedding": [("embedding/kernel:0", (14 * 14 * 3, 512)),
                            ("embedding/bias:0", (512,))]}  # fmt: skip
    return config, shapes


def _timed(model: KerasGraph, image: torch.Tensor, z: torch.Tensor) -> float:
    started = time.perf_counter()
    model(image, z)
    return time.perf_counter() - started


__all__ = ["BATCHES", "clipswap_figures", "generator_figures"]
