"""The batched swap engine: order, batching across frames, the latency and
memory bounds, batched equal to unbatched, and the paper's paste-back rule on
the device against an OpenCV + NumPy rendering of reference section 2.3."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from face_fixtures import grace_hopper
from test_clipswap_backend import _weights

from clipswap_video.config import load_settings
from clipswap_video.faces import Face, alignment_matrices, invert_affine
from clipswap_video.swap import CropBatch, FrameWork, SwapEngine, SwappedBatch
from clipswap_video.swap.backend import create_backend
from clipswap_video.swap.composite import paper_mask

SIZE = 256
# Grace Hopper's 5 landmarks (eyes, nose, mouth corners) in the 512 x 600 still.
GRACE_5 = np.array([[214, 233], [307, 232], [262, 288], [222, 337], [300, 335]], np.float64)


@dataclass
class _FakeBackend:
    """Swaps a crop into a known function of itself (with values beyond 0..255,
    as a real generator's unclipped output), and records the batch sizes."""

    name: str = "fake"
    crop_size: int = SIZE
    device: torch.device = torch.device("cpu")
    batches: list[int] = field(default_factory=list)

    def prepare_source(self, identity: object) -> None:
        del identity

    def swap(self, batch: CropBatch) -> SwappedBatch:
        self.batches.append(len(batch.crops))
        return SwappedBatch(1.2 * (255 - batch.crops) - 20)


class _Frame:
    def __init__(self, index: int) -> None:
        self.index = index


def _work(index: int, image: np.ndarray, faces: int) -> FrameWork:
    matrices = alignment_matrices(np.repeat(GRACE_5[None], max(faces, 1), 0), SIZE)[:faces]
    box = (100, 100, 420, 500) if faces else (0, 0, 0, 0)
    face = Face(box=np.array([180, 200, 340, 380], np.float64), score=1.0, landmarks_5=GRACE_5)
    return FrameWork(_Frame(index), image, [face] * faces, matrices, box)  # type: ignore[arg-type]


def test_frames_come_back_in_order_in_whole_frame_batches() -> None:
    backend, image = _FakeBackend(), grace_hopper()
    engine = SwapEngine(backend, batch_size=4, wait_s=60)
    faces = [1, 0, 2, 0, 0, 1, 3, 1, 0, 2]
    returned: list[FrameWork] = []
    for index, count in enumerate(faces):
        out = engine.submit(_work(index, image, count))
        assert all(work.done for work in out)
        returned += out
    assert len(returned) == 0 or returned[0].frame.index == 0
    returned += engine.flush()
    assert [work.frame.index for work in returned] == list(range(len(faces)))
    # Frames are never split: 1+0+2+0+0+1 = 4 crops, then 3+1 = 4, then the rest (2).
    assert backend.batches == [4, 4, 2] and engine.crops == sum(faces)
    for work, count in zip(returned, faces, strict=True):
        if count:
            assert work.swapped is not None and work.swapped.shape == (count, SIZE, SIZE, 3)


def test_batched_results_equal_unbatched() -> None:
    image = grace_hopper()
    results = {}
    for batch_size in (1, 8):
        engine = SwapEngine(_FakeBackend(), batch_size=batch_size, wait_s=60)
        works = [_work(index, image, count) for index, count in enumerate([1, 2, 1, 0, 1])]
        done = [out for work in works for out in engine.submit(work)] + engine.flush()
        results[batch_size] = [(w.targets, w.swapped) for w in done if w.faces]
    for (t1, s1), (t8, s8) in zip(results[1], results[8], strict=True):
        assert np.array_equal(t1, t8) and np.array_equal(s1, s8)


def test_the_latency_and_memory_bounds_launch_partial_batches() -> None:
    image = grace_hopper()
    backend = _FakeBackend()
    engine = SwapEngine(backend, batch_size=8, wait_s=0.0)  # no waiting: a batch per frame
    assert [w.frame.index for w in engine.submit(_work(0, image, 1))] == [0]
    assert backend.batches == [1]
    backend = _FakeBackend()
    engine = SwapEngine(backend, batch_size=2, wait_s=60)
    # One face, then frames without: held behind it until 4 x batch_size frames queue.
    held = [engine.submit(_work(index, image, 1 if index == 0 else 0)) for index in range(8)]
    assert held[:7] == [[]] * 7 and len(held[7]) == 8 and backend.batches == [1]


def _reference_paste(region: np.ndarray, faces: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Reference 2.3 with OpenCV: warpAffine of face and mask by the inverse
    matrix, frame = face * mask + frame * (1 - mask) per face, then clip and
    truncate to uint8."""
    frame = region.astype(np.float64) / 255
    mask = paper_mask(SIZE)
    height, width = region.shape[:2]
    for face, matrix in zip(faces, matrices, strict=True):
        inverse = invert_affine(matrix)
        face_back = cv2.warpAffine(face / 255, inverse, (width, height), borderValue=0)
        mask_back = cv2.warpAffine(mask, inverse, (width, height), borderValue=0)[..., None]
        frame = face_back * mask_back + frame * (1 - mask_back)
    return np.clip(frame * 255, 0, 255).astype(np.uint8)


def test_device_paste_follows_the_reference_composite() -> None:
    image = grace_hopper()
    engine = SwapEngine(_FakeBackend(), batch_size=4, wait_s=60, paste_mask=paper_mask(SIZE))
    work = _work(0, image, 1)
    engine.submit(work)
    engine.flush()
    assert work.pasted is not None and work.swapped is None
    x0, y0, _, _ = work.box
    shifted = work.matrices.copy()
    shifted[:, :, 2] += work.matrices[:, :, :2] @ np.array([x0, y0], np.float64)
    crops = np.stack([cv2.warpAffine(work.region, m, (SIZE, SIZE)) for m in shifted])
    faces = 1.2 * (255 - crops.astype(np.float32)) - 20  # the fake backend, unclipped
    expected = _reference_paste(work.region, faces, shifted)
    diff = np.abs(work.pasted.astype(int) - expected)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3  # OpenCV's 1/32 px grid
    assert np.array_equal(work.pasted[:5], work.region[:5])  # outside the mask: untouched


def test_generator_batched_equals_unbatched(tmp_path: Path) -> None:
    settings = load_settings(overrides=["swap.device=cpu"]).swap
    backend = create_backend("clipswap", _weights(tmp_path / "w"), settings)
    backend.z = torch.randn(1, 512)  # type: ignore[attr-defined]
    crops = torch.rand(4, 3, SIZE, SIZE) * 255
    together = backend.swap(CropBatch(crops)).crops
    alone = torch.cat([backend.swap(CropBatch(crops[i : i + 1])).crops for i in range(4)])
    assert together.shape == (4, 3, SIZE, SIZE)
    assert (together - alone).abs().max() <= 1e-5 * alone.abs().max()  # float rounding


@pytest.mark.parametrize("option", ["swap.channels_last=true", "swap.compile=true"])
def test_generator_switches_keep_the_output(tmp_path: Path, option: str) -> None:
    folder = _weights(tmp_path / "w")
    crops = torch.rand(2, 3, SIZE, SIZE) * 255
    outputs = []
    for overrides in (["swap.device=cpu"], ["swap.device=cpu", option]):
        backend = create_backend("clipswap", folder, load_settings(overrides=overrides).swap)
        backend.z = torch.ones(1, 512)  # type: ignore[attr-defined]
        outputs.append(backend.swap(CropBatch(crops)).crops)
    assert (outputs[0] - outputs[1]).abs().max() <= 1e-4 * outputs[0].abs().max()


def test_batch_size_zero_is_the_devices_automatic_choice() -> None:
    assert SwapEngine(_FakeBackend(), batch_size=0, wait_s=1).batch_size == 1  # the CPU
    assert SwapEngine(_FakeBackend(), batch_size=5, wait_s=1).batch_size == 5


_REFAULTS = """
import resource, sys, torch
from clipswap_video.swap._device import keep_freed_host_memory
if sys.argv[1] == "keep":
    assert keep_freed_host_memory()
torch.set_num_threads(1)
net = torch.nn.Sequential(*[torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(4)]).eval()
x = torch.rand(1, 64, 256, 256)  # 16 MiB activations, as in the generator
with torch.inference_mode():
    for call in range(5):  # two to warm up, three measured
        if call == 2:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.parametrize("policy", ["default", "keep"])
def test_freed_activations_are_reused_without_page_faults(policy: str) -> None:
    """On the CPU, a network's activations come back from the heap, not the kernel
    (glibc's default hands them back to the kernel on every free)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _REFAULTS, policy], capture_output=True,
                          text=True, check=True)  # fmt: skip
    faults = int(done.stdout)
    activation_pages = 3 * 4 * (16 << 20) // 4096  # 3 calls x 4 layers x 16 MiB
    assert faults < 100 if policy == "keep" else faults > activation_pages // 2
