"""The batched swap engine: the aligned crops of consecutive frames are swapped
in batches on the backend's device, overlapped with the CPU's work on the next
frames.

    engine = SwapEngine(backend, batch_size=16, wait_s=0.2)
    for work in engine.submit(FrameSwap(frame, image, faces, matrices, rect)):
        ...  # frames whose faces are swapped, in the order they were submitted
    for work in engine.flush():
        ...

A batch gathers whole frames until it holds `batch_size` crops, until its
oldest frame has waited `wait_s` (the latency bound), or until too many frames
queue behind it. Each batch then takes three steps, each on its own CUDA
stream: the frame regions its faces cover are packed into a pinned host buffer
and copied up with the crops' sampling matrices (upload stream); they are
warped into crops, swapped and, for the paper's composite, pasted back (compute
stream); the results are copied into pinned host memory (download stream).
Nothing between a batch's launch and its collection makes the host wait for
the device (no pageable copy, no value read back): the host waits for a batch
only when a third is about to start, so batch k+1 is gathered and uploaded
while batch k computes, and the CPU analyses the next frames meanwhile. On the
CPU the streams are no-ops and the same code runs synchronously.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from clipswap_video.faces import Face, crop_grid_theta, sample_crops, warp_back, warp_crops
from clipswap_video.media import Frame
from clipswap_video.swap.backend import CropBatch, SwapBackend
from clipswap_video.swap.composite import PixelRect, crop_footprint

AUTO_BATCH_SIZE = {"cpu": 1, "cuda": 16}
"""`swap.batch_size = 0`: on a CPU the generator is memory-bound and larger
batches run fewer faces a second, so the CPU gets no batching; GPUs need
batches to fill their cores. Figures: docs/benchmarks.md."""
_IN_FLIGHT = 2  # batches on the device at once: one computing, one uploading
_FRAMES_PER_CROP = 4  # frames held per crop of batch size before a partial batch runs


@dataclass(eq=False)
class FrameSwap:
    """One frame's swap: its selected faces, their frame -> crop matrices and
    the frame rectangle the crops cover. The engine fills in the
    results: the aligned target crops and the swapped ones (N, S, S, 3) uint8,
    or, when it composites on the device, the region with the faces pasted."""

    frame: Frame
    image: np.ndarray
    faces: list[Face]
    matrices: np.ndarray
    rect: PixelRect
    targets: np.ndarray | None = None
    swapped: np.ndarray | None = None
    landmarks_68: np.ndarray | None = None
    hidden: np.ndarray | None = None
    pasted: np.ndarray | None = None
    done: bool = False

    @property
    def region(self) -> np.ndarray:
        x0, y0, x1, y1 = self.rect
        return self.image[y0:y1, x0:x1]


class _Staging:
    """A host buffer reused batch after batch (page-locked on CUDA, so copies
    to and from the device run asynchronously), grown when a batch needs more."""

    def __init__(self, pinned: bool, dtype: torch.dtype = torch.uint8) -> None:
        self.pinned, self.dtype = pinned, dtype
        self.buffer = torch.empty(0, dtype=dtype)
        self.allocations = 0

    def reserve(self, size: int) -> torch.Tensor:
        if self.buffer.numel() < size:
            self.buffer = torch.empty(size + size // 4, dtype=self.dtype, pin_memory=self.pinned)
            self.allocations += 1
        return self.buffer[:size]


@dataclass(frozen=True, eq=False)
class _Slot:
    """The host buffers of one batch in flight: frame regions and sampling
    matrices going up, results coming down."""

    regions: _Staging
    thetas: _Staging
    results: _Staging

    @classmethod
    def new(cls, pinned: bool) -> _Slot:
        return cls(_Staging(pinned), _Staging(pinned, torch.float32), _Staging(pinned))


@dataclass(eq=False)
class _Batch:
    works: list[FrameSwap]
    slot: _Slot
    sizes: list[int] = field(default_factory=list)  # bytes of each work's results
    keep: list[torch.Tensor] = field(default_factory=list)  # device tensors in use
    event: torch.cuda.Event | None = None


class _Streams:
    """Upload, compute and download streams on CUDA; plain synchronous code elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        streams: list[torch.cuda.Stream | None] = [None] * 3
        if self.cuda:
            streams = [torch.cuda.Stream(device) for _ in range(3)]
        self.upload, self.compute, self.download = streams

    @contextlib.contextmanager
    def on(
        self, stream: torch.cuda.Stream | None, after: torch.cuda.Stream | None = None
    ) -> Iterator[None]:
        """Runs the block on `stream`, after the work already queued on `after`."""
        if stream is None:
            yield
            return
        if after is not None:
            stream.wait_stream(after)
        with torch.cuda.stream(stream):
            yield


class SwapEngine:
    """Swaps the faces of submitted frames in cross-frame batches; see the module docstring.

    Args:
        backend: a prepared swap backend; the engine runs on its device.
        batch_size: crops per batch (a frame with more faces runs as one
            batch); 0 = the device's AUTO_BATCH_SIZE.
        wait_s: how long the oldest frame of a partial batch may wait.
        paste_mask: (S, S) blend mask for compositing on the device with the
            paper's rule (alpha blend, clip at the end); None hands the crops
            back for the CPU compositing instead.
    """

    def __init__(
        self,
        backend: SwapBackend,
        *,
        batch_size: int,
        wait_s: float,
        paste_mask: np.ndarray | None = None,
    ) -> None:
        self.backend, self.wait_s = backend, wait_s
        self.device = backend.device
        self.batch_size = batch_size or AUTO_BATCH_SIZE.get(self.device.type, 1)
        self.streams = _Streams(self.device)
        self._slots = [_Slot.new(pinned=self.streams.cuda) for _ in range(_IN_FLIGHT)]
        self._mask = None
        if paste_mask is not None:
            self._mask = torch.as_tensor(paste_mask, dtype=torch.float32, device=self.device)
        if self.streams.cuda:
            # The backend prepared its source (and this mask) on the default
            # stream without waiting: the compute stream must not start before.
            assert self.streams.compute is not None
            self.streams.compute.wait_stream(torch.cuda.current_stream(self.device))
        self._order: deque[FrameSwap] = deque()  # submitted, not yet handed back
        self._gathering: list[FrameSwap] = []
        self._gathering_since = 0.0
        self._in_flight: deque[_Batch] = deque()
        self.batches = 0
        self.crops = 0

    @property
    def pastes(self) -> bool:
        """Whether the engine composites the faces itself (the paper's rule)."""
        return self._mask is not None

    def submit(self, work: FrameSwap) -> list[FrameSwap]:
        """Queues a frame; returns the frames finished so far, in submission order."""
        self._order.append(work)
        if work.faces:
            if not self._gathering:
                self._gathering_since = time.monotonic()
            self._gathering.append(work)
        else:
            work.done = True
        if self._gathering and self._batch_due():
            self._launch()
        self._collect(wait=False)
        return self._pop_done()

    def flush(self) -> list[FrameSwap]:
        """Runs what is left and returns every remaining frame, in order."""
        if self._gathering:
            self._launch()
        self._collect(wait=True)
        return self._pop_done()

    def _batch_due(self) -> bool:
        crops = sum(len(work.faces) for work in self._gathering)
        return (
            crops >= self.batch_size
            or time.monotonic() - self._gathering_since >= self.wait_s
            or len(self._order) >= _FRAMES_PER_CROP * self.batch_size  # bounds held memory
        )

    def _launch(self) -> None:
        while len(self._in_flight) >= _IN_FLIGHT:  # its staging slot is about to be reused
            self._complete(self._in_flight.popleft())
        batch = _Batch(self._gathering, self._slots[self.batches % _IN_FLIGHT])
        self._gathering = []
        regions, thetas = self._upload(batch)
        results = self._compute(batch, regions, thetas)
        self._download(batch, results)
        self._in_flight.append(batch)
        self.batches += 1
        self.crops += sum(len(work.faces) for work in batch.works)

    def _upload(self, batch: _Batch) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Each work's region on the device, (3, h, w) uint8 (float on the CPU,
        where the warp would convert it anyway), and its crops' sampling
        matrices (None for the paper's composite, which samples as OpenCV does)."""
        thetas: list[np.ndarray | None] = [
            None
            if self.pastes
            else crop_grid_theta(
                work.matrices, work.region.shape[:2], self.backend.crop_size, origin=work.rect[:2]
            )
            for work in batch.works
        ]
        if not self.streams.cuda:
            as_float = [work.region.astype(np.float32) for work in batch.works]
            return (
                [torch.from_numpy(region).permute(2, 0, 1) for region in as_float],
                [None if theta is None else torch.from_numpy(theta) for theta in thetas],
            )
        regions = self._stage([work.region for work in batch.works], batch.slot.regions, batch)
        matrices = [theta for theta in thetas if theta is not None]
        uploaded = iter(self._stage(matrices, batch.slot.thetas, batch))
        return (
            [region.permute(2, 0, 1) for region in regions],
            [None if theta is None else next(uploaded) for theta in thetas],
        )

    def _stage(
        self, arrays: list[np.ndarray], staging: _Staging, batch: _Batch
    ) -> list[torch.Tensor]:
        """`arrays` packed into one pinned buffer and copied to the device in one
        asynchronous copy on the upload stream; their views on the device."""
        if not arrays:
            return []
        staged = staging.reserve(sum(array.size for array in arrays))
        flat, offset = staged.numpy(), 0
        for array in arrays:
            np.copyto(flat[offset : offset + array.size].reshape(array.shape), array)
            offset += array.size
        with self.streams.on(self.streams.upload):
            on_device = staged.to(self.device, non_blocking=True)
        batch.keep.append(on_device)
        views, offset = [], 0
        for array in arrays:
            views.append(on_device[offset : offset + array.size].view(array.shape))
            offset += array.size
        return views

    def _compute(
        self, batch: _Batch, regions: list[torch.Tensor], thetas: list[torch.Tensor | None]
    ) -> list[torch.Tensor]:
        """Per work, the uint8 results to download (the pasted region, or the
        target and swapped crops)."""
        with self.streams.on(self.streams.compute, after=self.streams.upload):
            crops = torch.cat(
                [
                    self._crops(region, theta, work)
                    for region, theta, work in zip(regions, thetas, batch.works, strict=True)
                ]
            )
            if self.pastes:
                # The authors' OpenCV 4 warps the uint8 frame in 1/32 px steps and
                # rounds the sums half up: whole grey levels.
                crops = (crops + 0.5).floor()
            swapped = self.backend.swap(CropBatch(crops))
            if swapped.landmarks_68 is not None:
                _share(batch.works, "landmarks_68", swapped.landmarks_68)
            if swapped.hidden is not None:
                _share(batch.works, "hidden", swapped.hidden)
            results: list[torch.Tensor] = []
            start = 0
            for work, region in zip(batch.works, regions, strict=True):
                faces = slice(start, start + len(work.faces))
                start = faces.stop
                if self.pastes:
                    results.append(self._paste(region, swapped.crops[faces], work))
                else:
                    pair = torch.stack([crops[faces], swapped.crops[faces]])
                    results.append(pair.round().clamp(0, 255).byte().permute(0, 1, 3, 4, 2))
            batch.keep.extend([crops, swapped.crops, *results])
        return results

    def _crops(
        self, region: torch.Tensor, theta: torch.Tensor | None, work: FrameSwap
    ) -> torch.Tensor:
        """The aligned crops of one work's faces, (N, 3, S, S) float: the region
        converted once and shared by its faces, not copied per face."""
        faces = region[None].float().expand(len(work.faces), -1, -1, -1)
        size = self.backend.crop_size
        if theta is None:
            return warp_crops(faces, work.matrices, size, origin=work.rect[:2], in_32nds=True)
        return sample_crops(faces, theta, size)

    def _paste(self, region: torch.Tensor, faces: torch.Tensor, work: FrameSwap) -> torch.Tensor:
        """The reference's composite: each face (float, unclipped) alpha-blended
        with the warped mask in detection order, then clipped and truncated to
        uint8 (reference 2.3), as (h, w, 3). Each face is warped and blended
        only inside its own footprint, where its mask can be non-zero: the
        region spans every face of the frame, so two faces far apart make it
        nearly the whole frame."""
        assert self._mask is not None
        frame = region.float()
        # Face and mask warped together: one sampling of four channels.
        layers = torch.cat([faces.float(), self._mask.expand(len(faces), 1, -1, -1)], dim=1)
        for layer, matrix in zip(layers, work.matrices, strict=True):
            box = _footprint_in(matrix, layers.shape[-1], work)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            origin = (work.rect[0] + x0, work.rect[1] + y0)
            back = warp_back(layer[None], matrix, (y1 - y0, x1 - x0), origin=origin, in_32nds=True)
            face, mask = back[0, :3], back[0, 3:]
            inside = frame[:, y0:y1, x0:x1]
            inside.copy_(face * mask + inside * (1 - mask))
        return frame.clamp(0, 255).floor().byte().permute(1, 2, 0)

    def _download(self, batch: _Batch, results: list[torch.Tensor]) -> None:
        batch.sizes = [result.numel() for result in results]
        if not self.streams.cuda:
            batch.keep = [result.contiguous().view(-1) for result in results]
            return
        host = batch.slot.results.reserve(sum(batch.sizes))
        with self.streams.on(self.streams.download, after=self.streams.compute):
            flat = torch.cat([result.reshape(-1) for result in results])
            host.copy_(flat, non_blocking=True)
            batch.event = torch.cuda.Event()
            batch.event.record()
        batch.keep.append(flat)

    def _collect(self, *, wait: bool) -> None:
        """Finishes in-flight batches in order: all of them, or those already done."""
        while self._in_flight:
            event = self._in_flight[0].event
            if not wait and event is not None and not event.query():
                return
            self._complete(self._in_flight.popleft())

    def _complete(self, batch: _Batch) -> None:
        if batch.event is not None:
            batch.event.synchronize()
            host = batch.slot.results.buffer[: sum(batch.sizes)].numpy()
            parts = np.split(host, np.cumsum(batch.sizes)[:-1])
        else:
            parts = [result.numpy() for result in batch.keep[-len(batch.works) :]]
        size = self.backend.crop_size
        for work, part in zip(batch.works, parts, strict=True):
            if self._mask is not None:
                x0, y0, x1, y1 = work.rect
                work.pasted = part.reshape(y1 - y0, x1 - x0, 3).copy()
            else:
                pair = part.reshape(2, len(work.faces), size, size, 3).copy()
                work.targets, work.swapped = pair[0], pair[1]
            work.done = True

    def _pop_done(self) -> list[FrameSwap]:
        finished = []
        while self._order and self._order[0].done:
            finished.append(self._order.popleft())
        return finished


def _footprint_in(matrix: np.ndarray, size: int, work: FrameSwap) -> PixelRect | None:
    """Where a crop made with `matrix` reaches when warped back, in the
    coordinates of the work's region; None when it misses the region."""
    footprint = crop_footprint(matrix, size, work.image.shape)
    if footprint is None:
        return None
    left, top, right, bottom = work.rect
    x0, y0 = max(footprint[0], left), max(footprint[1], top)
    x1, y1 = min(footprint[2], right), min(footprint[3], bottom)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0 - left, y0 - top, x1 - left, y1 - top


def _share(works: list[FrameSwap], name: str, values: np.ndarray) -> None:
    """Splits per-crop `values` over the works, by their face counts."""
    start = 0
    for work in works:
        setattr(work, name, values[start : start + len(work.faces)])
        start += len(work.faces)


__all__ = ["FrameSwap", "SwapEngine"]
