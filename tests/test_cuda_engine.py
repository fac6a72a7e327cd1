"""The swap engine on a CUDA GPU (skipped without one; `gpu-check` runs them):
the same results as on the CPU, no host synchronisation inside the batch loop,
uploads overlapping the previous batch's compute, staging buffers reused, and
device memory flat in the video's length.

Tolerances: fp32 on CUDA is IEEE fp32 (swap/device.py `use_ieee_fp32`), so the
uint8 crops may differ from the CPU's by one grey level where a value lands
near .5; fp16 and bf16 are compared on the generator's float output, as a
mean error over the output's spread (fp16 keeps 10 mantissa bits, bf16 7)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from face_fixtures import grace_hopper
from test_clipswap_backend import _weights
from test_engine import SIZE, _work

from clipswap_video.config import load_settings
from clipswap_video.swap import CropBatch, FrameSwap, SwapEngine, SwappedBatch
from clipswap_video.swap.backends import create_backend
from clipswap_video.swap.composite import paper_mask

pytestmark = pytest.mark.cuda

CUDA = torch.device("cuda:0")
FACES = [1, 2, 0, 1, 3, 1, 0, 1, 2, 1, 1, 1]
PRECISION_TOLERANCE = {"fp16": 0.01, "bf16": 0.05}
"""Largest mean |CUDA - CPU fp32| over the std of the CPU's output."""


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _weights(tmp_path_factory.mktemp("cuda-weights"))


def _backend(weights: Path, device: str, precision: str = "fp32"):  # type: ignore[no-untyped-def]
    overrides = [f"swap.device={device}", f"swap.precision={precision}"]
    backend = create_backend("clipswap", weights, load_settings(overrides=overrides).swap)
    backend.z = torch.linspace(-1, 1, 512, device=backend.device)[None]
    return backend


def _run(engine: SwapEngine, faces: list[int]) -> list[FrameSwap]:
    image = grace_hopper()
    works = [_work(index, image, count) for index, count in enumerate(faces)]
    done = [out for work in works for out in engine.submit(work)]
    return done + engine.flush()


@pytest.mark.parametrize("paste", [False, True], ids=["crops", "paper-paste"])
def test_engine_on_cuda_equals_the_cpu_in_fp32(weights: Path, paste: bool) -> None:
    mask = paper_mask(SIZE) if paste else None
    results = {}
    for device in ("cpu", "cuda:0"):
        engine = SwapEngine(_backend(weights, device), batch_size=4, wait_s=60, paste_mask=mask)
        results[device] = _run(engine, FACES)
    for cpu, cuda in zip(results["cpu"], results["cuda:0"], strict=True):
        for name in ("pasted",) if paste else ("targets", "swapped"):
            a, b = getattr(cpu, name), getattr(cuda, name)
            if a is None:
                assert b is None
                continue
            diff = np.abs(a.astype(int) - b)
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (name, diff.max())


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_stays_near_fp32(weights: Path, precision: str) -> None:
    crops = CropBatch(
        torch.rand(8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 255
    )
    reference = _backend(weights, "cpu").swap(crops).crops
    reduced = _backend(weights, "cuda:0", precision).swap(CropBatch(crops.crops.to(CUDA)))
    error = (reduced.crops.cpu() - reference).abs().mean() / reference.std()
    assert error <= PRECISION_TOLERANCE[precision], float(error)


def test_no_host_synchronisation_inside_the_batch_loop(weights: Path) -> None:
    """Any pageable copy, `.item()`, `nonzero` or stream synchronisation from
    submit to the end of flush raises (event waits on finished batches are the
    engine's one intended wait and are not counted by CUDA's sync debug mode)."""
    engine = SwapEngine(_backend(weights, "cuda:0"), batch_size=4, wait_s=60)
    _run(engine, [1])  # allocations, kernels and cuDNN plans made outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        done = _run(engine, FACES * 3)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(done) == len(FACES) * 3


@dataclass
class _SlowBackend:
    """Keeps the GPU busy for a fixed time per batch and records, on the
    compute stream, when each batch's compute starts and ends."""

    name: str = "slow"
    crop_size: int = SIZE
    alignment: str = "arcface"
    device: torch.device = CUDA
    ends: list[torch.cuda.Event] = field(default_factory=list)

    def prepare_source(self, identity: object) -> None:
        del identity

    def swap(self, batch: CropBatch) -> SwappedBatch:
        torch.cuda._sleep(20_000_000)  # ~10-20 ms of GPU time on current GPUs
        self.ends.append(_timed_event())
        return SwappedBatch(255 - batch.crops)


def _timed_event() -> torch.cuda.Event:
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


@pytest.fixture
def upload_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[torch.cuda.Event]]:
    """An event recorded on the upload stream after each batch's region copy."""
    uploads: list[torch.cuda.Event] = []
    original = SwapEngine._stage

    def staged(self: SwapEngine, arrays, staging, batch):  # type: ignore[no-untyped-def]
        views = original(self, arrays, staging, batch)
        if staging is batch.slot.regions:
            event = torch.cuda.Event(enable_timing=True)
            event.record(self.streams.upload)
            uploads.append(event)
        return views

    monkeypatch.setattr(SwapEngine, "_stage", staged)
    yield uploads


def test_uploads_overlap_the_previous_batchs_compute(upload_events: list) -> None:
    backend = _SlowBackend()
    engine = SwapEngine(backend, batch_size=1, wait_s=60)  # a batch per one-face frame
    start = _timed_event()
    _run(engine, [1] * 12)
    torch.cuda.synchronize()
    uploaded = [start.elapsed_time(event) for event in upload_events]
    computed = [start.elapsed_time(event) for event in backend.ends]
    assert len(uploaded) == len(computed) == 12
    # Batch k+1 is on the device before batch k's compute ends (two in flight).
    overlapped = [uploaded[k + 1] < computed[k] for k in range(11)]
    assert sum(overlapped) >= 9, (uploaded, computed)


def test_pinned_staging_buffers_are_reused(weights: Path) -> None:
    engine = SwapEngine(_backend(weights, "cuda:0"), batch_size=2, wait_s=60)
    _run(engine, [1] * 40)
    for slot in engine._slots:
        for staging in (slot.regions, slot.thetas, slot.results):
            assert staging.buffer.is_pinned()
            assert staging.allocations <= 2  # grown once or twice, then reused
    assert engine.batches == 20


def test_device_memory_is_flat_in_the_videos_length(weights: Path) -> None:
    """A long run holds no more device memory than a short one: nothing of a
    finished batch stays on the GPU (a 10-minute clip stands in as 20 x more
    frames than a 10-second one, at the same batch size)."""
    backend = _backend(weights, "cuda:0")
    peaks = []
    for frames in (30, 600):
        engine = SwapEngine(backend, batch_size=4, wait_s=60)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(CUDA)
        _run(engine, [1] * frames)
        peaks.append(torch.cuda.max_memory_allocated(CUDA))
        del engine
    assert peaks[1] <= peaks[0] * 1.05 + (1 << 20), peaks
