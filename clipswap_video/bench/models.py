"""Generator figures for `clipswap-video bench`: forward throughput of the
full-size FaceDancer/ClipSwap generator graph (random weights, the released
files' topology and size) run by the Keras interpreter, in faces per second,
plain and with the engine's switches (channels-last layout, torch.compile);
the page faults of a generator call on the CPU with glibc's default allocator
policy and with `keep_freed_host_memory`; and the whole `--swapper clipswap`
job on a short demo clip with that generator, as a ratio to the generator's
own throughput at the same batch size and switches, measured in the same run.
`NeuralOptions` can narrow the graph and skip torch.compile, so the tests run
the same code on small, real measurements."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from clipswap_video.config import load_settings
from clipswap_video.demo import write_demo_media
from clipswap_video.media.containers import resolve_encoder
from clipswap_video.models import create_model
from clipswap_video.models.convert import save_converted
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.spec_graph import random_weights
from clipswap_video.pipeline import run_video
from clipswap_video.swap.device import autocast, keep_freed_host_memory, resolve_device
from clipswap_video.swap.engine import AUTO_BATCH_SIZE

BATCHES = (1, 4, 8)
MIN_TIMED_S = 2.0
"""Timed seconds per throughput figure at least: one call is too few to trust on a GPU."""


@dataclass(frozen=True)
class NeuralOptions:
    """Where and how the generator runs in the benchmark."""

    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 0  # the engine's automatic choice for the device
    channels_last: bool = False  # the default: no gain on CPUs (docs/benchmarks.md)
    codec: str | None = None
    generator: GeneratorSpec = GeneratorSpec()  # the full-size graph
    batches: tuple[int, ...] = BATCHES
    compile: bool = True  # minutes of the bench on a cold inductor cache
    repeats: int = 3
    min_timed_s: float = MIN_TIMED_S
    fault_calls: int = 3  # measured generator calls per page-fault figure


def generator_figures(options: NeuralOptions) -> dict[str, Any]:
    """Faces per second at each of `batches` (the best call of at least `repeats`
    and `min_timed_s` seconds, after a warm-up); at `batch_size` also with
    channels-last and, if `compile`, with torch.compile (and the compile time);
    on the CPU, the page faults per call with and without keeping freed memory."""
    device = resolve_device(options.device)
    if device.type == "cpu":
        keep_freed_host_memory()  # as the clipswap backend does
    model = create_model(options.generator, device=device)
    results: dict[str, Any] = {
        "generator_parameters": sum(p.numel() for p in model.parameters()),
        "generator_device": f"{device} {options.precision}",
    }
    batch = _batch_size(options)
    for size in sorted({*options.batches, batch}):
        results[f"generator_faces_per_s_b{size}"] = generator_throughput(model, size, options)
    results[f"generator_faces_per_s_b{batch}_channels_last"] = generator_throughput(
        model.to(memory_format=torch.channels_last),  # type: ignore[call-overload]
        batch,
        options,
        memory_format=torch.channels_last,
    )
    model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    if options.compile:
        started = time.perf_counter()
        compiled = torch.compile(model, dynamic=False)
        generator_throughput(compiled, batch, options, repeats=1)  # the first call compiles
        results["generator_compile_s"] = round(time.perf_counter() - started, 1)
        results[f"generator_faces_per_s_b{batch}_compiled"] = generator_throughput(
            compiled, batch, options
        )
    if device.type == "cpu":
        results |= page_fault_figures(options.generator, options.fault_calls)
    return results


_PAGE_FAULTS = """
import json, resource, sys, torch
from clipswap_video.models import create_model
from clipswap_video.models.facedancer_spec import GeneratorSpec
from clipswap_video.swap.device import keep_freed_host_memory
spec, calls = json.loads(sys.argv[1]), int(sys.argv[2])
spec = {key: tuple(value) if isinstance(value, list) else value for key, value in spec.items()}
model = create_model(GeneratorSpec(**spec))
image = torch.rand(1, 3, spec["image_size"], spec["image_size"]) * 2 - 1
z = torch.randn(1, spec["z_dim"])
faults = {}
for policy in ("default", "kept"):  # glibc's default first: keeping cannot be undone
    if policy == "kept" and not keep_freed_host_memory():
        break  # no mallopt in this C library: only the default figure
    with torch.inference_mode():
        for call in range(2 + calls):  # two to warm up under the policy, then measured
            if call == 2:
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            model(image, z)
    faults[policy] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls
print(json.dumps(faults))
"""


def page_fault_figures(spec: GeneratorSpec, calls: int = 3) -> dict[str, Any]:
    """Minor page faults per generator call at batch 1 on the CPU, in a fresh
    process: with glibc's default policy (large freed blocks go back to the
    kernel and are faulted in again on the next call), then after
    `keep_freed_host_memory` (where the C library has mallopt)."""
    done = subprocess.run(
        [sys.executable, "-c", _PAGE_FAULTS, json.dumps(asdict(spec)), str(calls)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench page faults failed: {done.stderr.strip()}")
    faults = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        f"generator_page_faults_per_call_{policy}": round(count, 1)
        for policy, count in faults.items()
    }


def generator_throughput(
    model: Callable[..., Any],
    batch: int,
    options: NeuralOptions,
    repeats: int | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """Faces per second of `model` on random `batch`-face inputs in the options'
    precision: the best call after a warm-up, of at least `repeats` calls and
    `min_timed_s` seconds of calls."""
    device = resolve_device(options.device)
    size = options.generator.image_size
    image = (torch.rand(batch, 3, size, size, device=device) * 2 - 1).contiguous(
        memory_format=memory_format
    )
    z = torch.randn(batch, options.generator.z_dim, device=device)

    def run() -> float:
        started = time.perf_counter()
        with torch.inference_mode(), autocast(options.precision, device):
            model(image, z)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    run()  # warm-up: allocator, kernels, cuDNN autotuning
    times = [run() for _ in range(options.repeats if repeats is None else repeats)]
    while sum(times) < options.min_timed_s:  # a fast device: enough calls for a stable best
        times.append(run())
    return round(batch / min(times), 2)


def clipswap_figures(
    folder: Path,
    options: NeuralOptions,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (1280, 720),
) -> dict[str, Any]:
    """End-to-end faces/s of `--swapper clipswap` (the options' random generator,
    full-size by default, and a small identity net) on a short one-face demo
    clip, and its ratio to the generator alone at the same batch size and
    layout, timed just before and just after the job (the faster of the two: a
    shared machine's speed drifts within a minute): how much of the job's time
    the model gets."""
    weights = write_random_clipswap(folder / "weights", options.generator)
    clip = write_demo_media(
        folder / "clipswap_clip", seconds=seconds, width=size[0], height=size[1], fps=30
    )
    batch = _batch_size(options)
    overrides = [
        "swap.swapper=clipswap",
        f"swap.device={options.device}",
        f"swap.precision={options.precision}",
        f"swap.batch_size={batch}",
        f"swap.channels_last={str(options.channels_last).lower()}",
    ]
    if options.codec:
        overrides.append(f"video.codec={options.codec}")
    settings = load_settings(overrides=overrides)
    layout = torch.channels_last if options.channels_last else torch.contiguous_format
    model = create_model(weights / "ClipSwap.safetensors", device=resolve_device(options.device))
    model = model.to(memory_format=layout)  # type: ignore[call-overload]
    before = generator_throughput(model, batch, options, memory_format=layout)
    started: list[float] = []  # when the models are loaded and the first frame is read

    def on_start(frames: int | None) -> None:
        started.append(time.perf_counter())

    result = run_video(
        clip.source_image,
        clip.video,
        folder / "clipswap.mp4",
        settings,
        weights_dir=weights,
        on_start=on_start,
    )
    elapsed = time.perf_counter() - started[0]
    baseline = max(before, generator_throughput(model, batch, options, memory_format=layout))
    faces_per_s = result.frames / elapsed  # one face per demo frame
    return {
        "clipswap_e2e_setup": f"batch {batch}, channels_last {options.channels_last}, "
        f"{resolve_encoder(folder / 'clipswap.mp4', settings.video)}, {size[0]}x{size[1]}",
        "clipswap_e2e_faces_per_s": round(faces_per_s, 2),
        "clipswap_e2e_generator_faces_per_s": baseline,
        "clipswap_e2e_vs_generator": round(faces_per_s / baseline, 3),
    }


def write_random_clipswap(folder: Path, spec: GeneratorSpec) -> Path:
    """`folder` with ClipSwap.safetensors (the `spec` graph, random weights) and a
    small random stand-in for ArcFace-Res50: what `--swapper clipswap` loads."""
    folder.mkdir(parents=True, exist_ok=True)
    config, shapes = generator_config(spec)
    save_converted(config, random_weights(shapes), folder / "ClipSwap.safetensors")
    identity_config, identity_shapes = _identity_net()
    save_converted(
        identity_config, random_weights(identity_shapes), folder / "ArcFace-Res50.safetensors"
    )
    return folder


def _batch_size(options: NeuralOptions) -> int:
    return options.batch_size or AUTO_BATCH_SIZE.get(resolve_device(options.device).type, 1)


def _identity_net() -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A small stand-in for ArcFace-Res50 (112 px in, 512 out): its cost is paid once."""
    layers = [
        {
            "class_name": "InputLayer",
            "name": "image",
            "inbound_nodes": [],
            "config": {"name": "image", "batch_input_shape": [None, 112, 112, 3]},
        },
        {
            "class_name": "AveragePooling2D",
            "name": "pool",
            "inbound_nodes": [[["image", 0, 0, {}]]],
            "config": {"name": "pool", "pool_size": [8, 8], "strides": [8, 8], "padding": "valid"},
        },
        {
            "class_name": "Flatten",
            "name": "flatten",
            "inbound_nodes": [[["pool", 0, 0, {}]]],
            "config": {"name": "flatten"},
        },
        {
            "class_name": "Dense",
            "name": "embedding",
            "inbound_nodes": [[["flatten", 0, 0, {}]]],
            "config": {"name": "embedding", "units": 512, "activation": "linear"},
        },
    ]
    config = {
        "class_name": "Functional",
        "config": {
            "name": "identity",
            "layers": layers,
            "input_layers": [["image", 0, 0]],
            "output_layers": [["embedding", 0, 0]],
        },
    }
    shapes = {
        "embedding": [("embedding/kernel:0", (14 * 14 * 3, 512)), ("embedding/bias:0", (512,))]
    }
    return config, shapes


__all__ = [
    "BATCHES",
    "MIN_TIMED_S",
    "NeuralOptions",
    "clipswap_figures",
    "generator_figures",
    "generator_throughput",
    "page_fault_figures",
    "write_random_clipswap",
]
