"""What each local worker process is given, and does before its first job: its
share of the box's cores, its share of a GPU that several workers use, its own
GPU as the current CUDA device (and as NVENC's); and which errors leave a
worker's GPU unusable.

Workers are spawned processes: OpenMP sizes its pool from OMP_NUM_THREADS when
torch loads, and the CUDA allocator reads PYTORCH_CUDA_ALLOC_CONF when it
starts, so those travel in the environment the processes are spawned with; the
rest travels as a WorkerSetup. Nothing here imports torch or OpenCV at module
level: the driver plans without them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clipswap_video.config_sections import FaceSettings, VideoSettings
from clipswap_video.faces import FaceDetector

DetectorFactory = Callable[[FaceSettings], FaceDetector]
"""Builds a worker's face detector from its job's face settings (picklable: it
travels to the spawned workers); the default is faces.create_detector."""

MEMORY_MARGIN = 0.02
"""Taken off each share of a shared GPU: every process's CUDA context, and what
ONNX Runtime and the video codecs allocate, lie outside torch's cap."""

ALLOCATOR = "expandable_segments:True"
"""For workers sharing a GPU: segments that grow in place, so frames of other
sizes do not leave each process holding blocks it cannot reuse."""


@dataclass(frozen=True)
class WorkerSetup:
    """What one worker process is told when it starts.

    Attributes:
        threads: its OpenCV threads (OpenMP's come from OMP_NUM_THREADS); None
            leaves the libraries' defaults (every core).
        memory_fraction: the share of its GPU's memory torch may allocate; None
            for no cap (the GPU is its own, or it has none).
        detector_factory: builds its face detector (None: create_detector).
    """

    threads: int | None = None
    memory_fraction: float | None = None
    detector_factory: DetectorFactory | None = None


def plan_workers(
    devices: Sequence[str],
    cores: int,
    environ: Mapping[str, str],
    detector_factory: DetectorFactory | None = None,
) -> tuple[list[WorkerSetup], dict[str, str]]:
    """Each worker's setup, and the variables to add to the environment the
    workers are spawned with (those the user has not set).

    Every worker counts, GPU ones too: they decode, analyse, composite and
    encode on the CPU, and pools each sized for every core spin-wait for each
    other's cores (docs/benchmarks.md). The user's OMP_NUM_THREADS is kept.
    """
    threads = thread_share(len(devices), cores, environ)
    fractions = memory_fractions(devices)
    setups = [WorkerSetup(threads, fraction, detector_factory) for fraction in fractions]
    added: dict[str, str] = {}
    if threads is not None and "OMP_NUM_THREADS" not in environ:
        added["OMP_NUM_THREADS"] = str(threads)
    user_allocator = {"PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"} & set(environ)
    if any(fraction is not None for fraction in fractions) and not user_allocator:
        added["PYTORCH_CUDA_ALLOC_CONF"] = ALLOCATOR
    return setups, added


def thread_share(workers: int, cores: int, environ: Mapping[str, str]) -> int | None:
    """Threads per worker: the user's OMP_NUM_THREADS, else cores / workers when
    there are several; None (the libraries' defaults) for one worker."""
    user = environ.get("OMP_NUM_THREADS", "")
    if user.isdigit() and int(user) > 0:
        return int(user)
    return max(1, cores // workers) if workers > 1 else None


def memory_fractions(devices: Sequence[str]) -> list[float | None]:
    """Per worker, its cap on its GPU's memory: 1/k less MEMORY_MARGIN when k
    workers share the GPU (each has its own caching allocator, which would
    otherwise keep what it once used until the others run out); None alone or
    on the CPU."""
    gpus = [gpu_index(device) for device in devices]
    sharing = Counter(index for index in gpus if index is not None)
    return [
        None if index is None or sharing[index] < 2 else 1 / sharing[index] - MEMORY_MARGIN
        for index in gpus
    ]


def gpu_index(device: str) -> int | None:
    """The GPU of `cuda:N` (a bare `cuda` is GPU 0 in a fresh process); None for the CPU."""
    kind, _, index = device.partition(":")
    if kind != "cuda":
        return None
    return int(index) if index else 0


def prepare_worker(device: str, setup: WorkerSetup) -> None:
    """Run first in a worker process, before any model loads: OpenCV's threads,
    then the worker's GPU as the current device (calls that name no device, and
    the CUDA context itself, land there rather than on GPU 0) and its memory cap."""
    if setup.threads is not None:
        import cv2

        cv2.setNumThreads(setup.threads)
    index = gpu_index(device)
    if index is None:
        return
    import torch

    torch.cuda.set_device(index)
    if setup.memory_fraction is not None:
        torch.cuda.set_per_process_memory_fraction(setup.memory_fraction, index)


def video_on(device: str, video: VideoSettings, output: Path, segment: bool) -> VideoSettings:
    """The video settings of a job on `device`: a segment is encoded with the
    whole output's encoder, and NVENC encodes on the worker's GPU (FFmpeg's nvenc
    takes GPU 0 unless its `gpu` option says otherwise)."""
    from clipswap_video.media.containers import resolve_encoder

    index = gpu_index(device)
    if not segment and index is None:
        return video
    codec = resolve_encoder(output, video)
    if segment:
        video = dataclasses.replace(video, codec=codec)
    if index is not None and codec.endswith("_nvenc") and "gpu" not in video.options:
        video = dataclasses.replace(video, options={**video.options, "gpu": str(index)})
    return video


@contextmanager
def spawn_environment(added: Mapping[str, str]) -> Iterator[None]:
    """`added` in os.environ for a while (while a worker is spawned: it inherits them)."""
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def device_failed(error: BaseException) -> bool:
    """Whether `error` (or one it was raised from) is a CUDA error that leaves the
    process's CUDA context unusable: an illegal address or a device-side assert
    fails every later call on that GPU. torch raises AcceleratorError (recent
    versions) or a RuntimeError saying "CUDA error"; running out of memory is
    neither."""
    torch = sys.modules.get("torch")  # not loaded: not a torch error
    if torch is None:
        return False
    accelerator = getattr(torch, "AcceleratorError", ())
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, accelerator) or (
            isinstance(current, RuntimeError)
            and not isinstance(current, torch.cuda.OutOfMemoryError)
            and "CUDA error" in str(current)
        ):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


__all__ = [
    "ALLOCATOR",
    "MEMORY_MARGIN",
    "DetectorFactory",
    "WorkerSetup",
    "device_failed",
    "gpu_index",
    "memory_fractions",
    "plan_workers",
    "prepare_worker",
    "spawn_environment",
    "thread_share",
    "video_on",
]
