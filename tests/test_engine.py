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
from clipswap_video.faces import Face, alignment_matrices, invert_affine, warp_back, warp_crops
from clipswap_video.swap import CropBatch, FrameSwap, SwapEngine, SwappedBatch
from clipswap_video.swap.backends import create_backend
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
    alignment: str = "arcface"
    device: torch.device = torch.device("cpu")
    batches: list[int] = field(default_factory=list)
    whole: bool = False
    """Whether the last crops were whole grey levels."""

    def prepare_source(self, identity: object) -> None:
        del identity

    def swap(self, batch: CropBatch) -> SwappedBatch:
        self.batches.append(len(batch.crops))
        self.whole = bool(torch.equal(batch.crops, batch.crops.round()))
        return SwappedBatch(1.2 * (255 - batch.crops) - 20)


class _Frame:
    def __init__(self, index: int) -> None:
        self.index = index


def _work(index: int, image: np.ndarray, faces: int) -> FrameSwap:
    matrices = alignment_matrices(np.repeat(GRACE_5[None], max(faces, 1), 0), SIZE)[:faces]
    rect = (100, 100, 420, 500) if faces else (0, 0, 0, 0)
    face = Face(box=np.array([180, 200, 340, 380], np.float64), score=1.0, landmarks_5=GRACE_5)
    return FrameSwap(_Frame(index), image, [face] * faces, matrices, rect)  # type: ignore[arg-type]


def test_frames_come_back_in_order_in_whole_frame_batches() -> None:
    backend, image = _FakeBackend(), grace_hopper()
    engine = SwapEngine(backend, batch_size=4, wait_s=60)
    faces = [1, 0, 2, 0, 0, 1, 3, 1, 0, 2]
    returned: list[FrameSwap] = []
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
    backend = _FakeBackend()
    engine = SwapEngine(backend, batch_size=4, wait_s=60, paste_mask=paper_mask(SIZE))
    work = _work(0, image, 1)
    engine.submit(work)
    engine.flush()
    assert work.pasted is not None and work.swapped is None
    assert backend.whole  # the reference warps a uint8 frame: its crops are integers
    x0, y0, _, _ = work.rect
    shifted = work.matrices.copy()
    shifted[:, :, 2] += work.matrices[:, :, :2] @ np.array([x0, y0], np.float64)
    crops = np.stack([cv2.warpAffine(work.region, m, (SIZE, SIZE)) for m in shifted])
    faces = 1.2 * (255 - crops.astype(np.float32)) - 20  # the fake backend, unclipped
    expected = _reference_paste(work.region, faces, shifted)
    diff = np.abs(work.pasted.astype(int) - expected)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3  # OpenCV's 1/32 px grid
    assert np.array_equal(work.pasted[:5], work.region[:5])  # outside the mask: untouched


def test_each_face_is_pasted_inside_its_own_footprint_as_over_the_whole_region() -> None:
    """Faces far apart (a region spanning nearly the frame), overlapping and
    cut by the frame's edge: blending each face only where it reaches gives
    the whole-region composite exactly."""
    still = grace_hopper()
    image = np.zeros((700, 1700, 3), np.uint8)
    image[50:650, 0:512], image[50:650, 1150:1662] = still, still
    shifts = [(0, 50), (1150, 50), (40, 70), (-230, 40)]  # left, right, overlapping, cut
    landmarks = np.stack([GRACE_5 + np.array(shift, np.float64) for shift in shifts])
    landmarks[2] = (landmarks[2] - landmarks[2].mean(0)) * 0.8 + landmarks[2].mean(0)
    matrices = alignment_matrices(landmarks, SIZE)
    rect = (0, 0, 1700, 700)
    face = Face(box=np.array([0, 0, 1, 1], np.float64), score=1.0, landmarks_5=GRACE_5)
    work = FrameSwap(_Frame(0), image, [face] * 4, matrices, rect)  # type: ignore[arg-type]
    engine = SwapEngine(_FakeBackend(), batch_size=4, wait_s=60, paste_mask=paper_mask(SIZE))
    engine.submit(work)
    engine.flush()
    crops = warp_crops(
        torch.from_numpy(image).permute(2, 0, 1).float()[None].expand(4, -1, -1, -1),
        matrices,
        SIZE,
        in_32nds=True,
    )
    faces = 1.2 * (255 - (crops + 0.5).floor()) - 20
    backs = warp_back(faces, matrices, image.shape[:2], in_32nds=True)
    masks = warp_back(
        torch.from_numpy(paper_mask(SIZE)).float().expand(4, 1, -1, -1),
        matrices,
        image.shape[:2],
        in_32nds=True,
    )
    expected = torch.from_numpy(image).permute(2, 0, 1).float()
    for back, mask in zip(backs, masks, strict=True):
        expected = back * mask + expected * (1 - mask)
    expected_image = expected.clamp(0, 255).floor().byte().permute(1, 2, 0).numpy()
    assert work.pasted is not None
    assert np.array_equal(work.pasted, expected_image)
    assert not np.array_equal(work.pasted[:, 1150:], image[:, 1150:])  # the far face is there


def test_generator_batched_equals_unbatched(tmp_path: Path) -> None:
    settings = load_settings(overrides=["swap.device=cpu"]).swap
    backend = create_backend("clipswap", _weights(tmp_path / "w"), settings)
    backend.z = torch.randn(1, 512)  # type: ignore[attr-defined]
    crops = torch.rand(4, 3, SIZE, SIZE) * 255
    together = backend.swap(CropBatch(crops)).crops
    alone = torch.cat([backend.swap(CropBatch(crops[i : i + 1])).crops for i in range(4)])
    assert together.shape == (4, 3, SIZE, SIZE)
    assert (together - alone).abs().max() <= 1e-5 * alone.abs().max()  # float rounding


def _generator_outputs(folder: Path, *options: str) -> list[torch.Tensor]:
    """The narrow generator's output on the same crops without and with `options`."""
    crops = torch.rand(2, 3, SIZE, SIZE) * 255
    outputs = []
    for overrides in (["swap.device=cpu"], ["swap.device=cpu", *options]):
        backend = create_backend("clipswap", folder, load_settings(overrides=overrides).swap)
        backend.z = torch.ones(1, 512)  # type: ignore[attr-defined]
        outputs.append(backend.swap(CropBatch(crops)).crops)
    return outputs


def test_channels_last_keeps_the_output(tmp_path: Path) -> None:
    eager, switched = _generator_outputs(_weights(tmp_path / "w"), "swap.channels_last=true")
    assert (eager - switched).abs().max() <= 1e-4 * eager.abs().max()


@pytest.mark.slow
def test_compiled_generator_keeps_the_output_and_compiles_once(tmp_path: Path) -> None:
    """The suite's one torch.compile: `swap.compile=true` through the backend on
    the narrow generator (the real graph's layers at 4 channels: compile time
    grows with the layer count, not the width) gives the eager output, and
    batches of 2, 3 and 1 crops (the engine's partial batches) are padded to
    the batch size, so the graph is compiled once, not once per size."""
    from torch._dynamo.utils import counters

    folder = _weights(tmp_path / "w")
    graphs = counters["stats"]["unique_graphs"]
    eager, compiled = _generator_outputs(folder, "swap.compile=true", "swap.batch_size=4")
    assert counters["stats"]["unique_graphs"] == graphs + 1  # through the compiler, once
    assert compiled.shape == eager.shape == (2, 3, SIZE, SIZE)  # the padding cut off
    assert (eager - compiled).abs().max() <= 1e-4 * eager.abs().max()
    options = ["swap.device=cpu", "swap.compile=true", "swap.batch_size=4"]
    backend = create_backend("clipswap", folder, load_settings(overrides=options).swap)
    backend.z = torch.ones(1, 512)  # type: ignore[attr-defined]
    for count in (3, 1):
        assert (
            backend.swap(CropBatch(torch.rand(count, 3, SIZE, SIZE) * 255)).crops.shape[0] == count
        )
    assert counters["stats"]["unique_graphs"] == graphs + 1


def test_batch_size_zero_is_the_devices_automatic_choice() -> None:
    assert SwapEngine(_FakeBackend(), batch_size=0, wait_s=1).batch_size == 1  # the CPU
    assert SwapEngine(_FakeBackend(), batch_size=5, wait_s=1).batch_size == 5


_HEAP = """
import ctypes
libc = ctypes.CDLL(None)
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
from clipswap_video.swap.device import keep_freed_host_memory
for policy in ("default", "kept"):  # glibc's default first: keeping cannot be undone
    if policy == "kept":
        assert keep_freed_host_memory() is True
    before = libc.mallinfo2()
    block = libc.malloc(64 << 20)  # over glibc's largest dynamic mmap threshold (32 MiB)
    mapped = libc.mallinfo2().hblkhd - before.hblkhd
    libc.free(block)
    print(policy, mapped, libc.mallinfo2().fordblks - before.fordblks)
"""


def test_freed_activations_stay_in_the_heap() -> None:
    """`keep_freed_host_memory` sets what it claims: a 64 MiB block (the full-size
    generator's first activations are 16 MiB a face) comes from the heap, not
    mmap, and stays there when freed, where glibc's default maps it and unmaps
    it every time (the page faults `make bench` counts). Allocator state, not
    timing."""
    import ctypes
    import subprocess
    import sys

    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("not glibc >= 2.33")
    done = subprocess.run([sys.executable, "-c", _HEAP], capture_output=True, text=True, check=True)
    mapped, freed = {}, {}  # bytes mmapped for the block; free bytes the heap kept
    for policy, mapped_bytes, free_bytes in (line.split() for line in done.stdout.splitlines()):
        mapped[policy], freed[policy] = int(mapped_bytes), int(free_bytes)
    block = 64 << 20
    # Other small allocations come and go between the calls: compare with half a block.
    assert mapped["default"] >= block and freed["default"] < block // 2  # mmap, then munmap
    assert mapped["kept"] == 0 and freed["kept"] > block // 2  # the heap, and not trimmed
