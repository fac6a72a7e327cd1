"""Training data: aligned face crops from image folders and videos, and the
batches FaceDancer's training step draws from them (reference 4.2).

Faces are found once with the project's own detectors (`faces.create_detector`,
`faces.detect_still`), aligned to the ArcFace template at the model's crop size
(`faces.alignment_matrices`, `faces.warp_crops`) and cached as PNG files, one
folder per source file, keyed by its path, size, mtime and the settings that
change the crops. Video frames are sampled evenly with decord (random access,
no full decode); decord does not apply a display rotation, so phone clips stored
sideways give no faces.

A batch: targets and sources drawn independently; with probability `same_ratio`
(at least once per batch) a sample's source is replaced by its target, and the
`same` flags say which (the reconstruction and perceptual losses use them). Then
each image gets its own colour jitter: brightness +-0.3 in [-1, 1] units,
contrast and saturation factors in [0.9, 1.1].
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from clipswap_video._resources import import_extra
from clipswap_video.arrays import RgbImage
from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import InputNotFoundError, NoFaceError, UnreadableInputError
from clipswap_video.faces import FaceDetector, alignment_matrices, create_detector, warp_crops
from clipswap_video.faces.identity import detect_still
from clipswap_video.media.image import IMAGE_SUFFIXES, read_image
from clipswap_video.media.probe import VIDEO_SUFFIXES, probe
from clipswap_video.train.config import DataConfig

LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 weights of the grey image that saturation blends towards."""


def find_media(paths: Sequence[str | Path]) -> list[Path]:
    """The images and videos named by `paths` (files, or folders searched recursively).

    Raises:
        InputNotFoundError: no paths, a path that does not exist, or nothing usable.
    """
    if not paths:
        raise InputNotFoundError("no training data: set data.paths (or pass --data DIR)")
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputNotFoundError(f"training data {path} does not exist")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found.extend(f for f in files if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not found:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        raise InputNotFoundError(f"no images or videos ({kinds}) in {', '.join(map(str, paths))}")
    return found


def read_video_frames(path: Path, count: int) -> list[RgbImage]:
    """`count` frames spread evenly over the video, RGB, read with decord."""
    decord = import_extra("decord", "train", "training on videos")

    probe(path)  # PyAV names what is wrong with a broken file in one line; decord logs noise
    decord.logging.set_level(decord.logging.QUIET)
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        total = len(reader)
        if total == 0:
            raise UnreadableInputError(f"video {path} has no frames")
        indices = sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int)))
        frames = reader.get_batch(indices).asnumpy()
    except (decord.DECORDError, RuntimeError) as error:  # DECORDError is no RuntimeError
        reason = (str(error).strip().splitlines() or ["unknown error"])[0]
        raise UnreadableInputError(f"video {path} cannot be read by decord ({reason})") from None
    return list(frames)


def aligned_faces(detector: FaceDetector, image: RgbImage, size: int) -> list[RgbImage]:
    """Every face of `image` warped to the ArcFace template at `size` px."""
    faces = detect_still(detector, image)
    if not faces:
        return []
    matrices = alignment_matrices(np.stack([face.landmarks_5 for face in faces]), size)
    frame = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()
    crops = warp_crops(frame, matrices, size, torch.zeros(len(faces), dtype=torch.long))
    pixels = crops.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return list(pixels)


class FaceCache:
    """Aligned crops of every source file, detected once and kept as PNGs.

    Args:
        folder: the cache folder.
        size: crop side (the model's image size).
        config: detector, smallest face, frames per video.
        weights_dir: where a non-dlib detector finds its model files.
    """

    def __init__(
        self, folder: Path, size: int, config: DataConfig, weights_dir: Path | None = None
    ) -> None:
        self.folder, self.size, self.config = folder, size, config
        self.weights_dir = weights_dir
        self._detector: FaceDetector | None = None

    def crops(
        self, media: Sequence[Path], on_file: Callable[[Path], None] | None = None
    ) -> list[Path]:
        """PNG files of all faces of `media`, detecting those not cached yet.

        Raises:
            NoFaceError: not one face in all of `media`.
        """
        files: list[Path] = []
        for source in media:
            files.extend(self._crops_of(source))
            if on_file is not None:
                on_file(source)
        if not files:
            raise NoFaceError(
                f"no faces of at least {self.config.min_face_size} px found in the "
                f"{len(media)} training file(s); check data.paths or lower data.min_face_size"
            )
        return files

    def _crops_of(self, source: Path) -> list[Path]:
        folder = self.folder / self._key(source)
        done = folder / "done.json"
        if done.exists():  # written last: a killed run re-detects the file
            return [folder / name for name in json.loads(done.read_text())["crops"]]
        folder.mkdir(parents=True, exist_ok=True)
        images = (
            read_video_frames(source, self.config.frames_per_video)
            if source.suffix.lower() in VIDEO_SUFFIXES
            else [read_image(source, what="training image")]
        )
        names = []
        for frame, image in enumerate(images):
            for face, crop in enumerate(aligned_faces(self.detector, image, self.size)):
                names.append(f"{frame:05d}_{face:02d}.png")
                cv2.imwrite(str(folder / names[-1]), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        done.write_text(json.dumps({"source": str(source), "crops": names}))
        return [folder / name for name in names]

    @property
    def detector(self) -> FaceDetector:
        """Loaded on first use: a fully cached data set needs none."""
        if self._detector is None:
            settings = FaceSettings(
                detector=self.config.detector,  # type: ignore[arg-type]
                min_size=self.config.min_face_size,
            )
            self._detector = create_detector(settings, self.weights_dir)
        return self._detector

    def _key(self, source: Path) -> str:
        stat = source.stat()
        c = self.config
        text = (
            f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.size}|{c.detector}"
            f"|{c.min_face_size}|{c.frames_per_video}"
        )
        return f"{source.stem[:40]}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


class FaceDataset:
    """Cached crops, decoded on demand by a few threads (OpenCV releases the GIL)."""

    def __init__(self, files: Sequence[Path], workers: int = 4) -> None:
        self.files = list(files)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="faces")

    def __len__(self) -> int:
        return len(self.files)

    def load(self, indices: Sequence[int]) -> torch.Tensor:
        """(N, 3, S, S) float images in [-1, 1], RGB."""
        images = list(self._pool.map(self._read, indices))
        return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() - 127.5) / 127.5

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def _read(self, index: int) -> np.ndarray:
        pixels = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
        if pixels is None:
            raise UnreadableInputError(f"cached face {self.files[index]} cannot be read")
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class Batch:
    """Targets, sources (both (N, 3, S, S) in [-1, 1]) and the `same` flags (N,)
    marking samples whose source is their own target."""

    target: torch.Tensor
    source: torch.Tensor
    same: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """On `device`; asynchronous to a GPU from a pinned batch (see pin_memory)."""
        return Batch(
            *(t.to(device, non_blocking=True) for t in (self.target, self.source, self.same))
        )

    def pin_memory(self) -> Batch:
        """In page-locked host memory, which a GPU copies from while it computes."""
        return Batch(*(t.pin_memory() for t in (self.target, self.source, self.same)))


def same_flags(batch_size: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(N,) bool: each True with probability `ratio`, at least one True when ratio > 0."""
    flags = torch.rand(batch_size, generator=generator) < ratio
    if ratio > 0 and not flags.any():
        flags[torch.randint(batch_size, (1,), generator=generator)] = True
    return flags


def colour_jitter(
    images: torch.Tensor, config: DataConfig, generator: torch.Generator
) -> torch.Tensor:
    """Per image: brightness shift, contrast about the channel means, saturation
    towards grey (the luma blend; TF's HSV saturation differs slightly), clamped
    to [-1, 1]."""
    n = len(images)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, 1, 1, 1, generator=generator)

    x = images + uniform(-config.brightness, config.brightness)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * uniform(*config.contrast) + mean
    grey = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * uniform(*config.saturation)
    return x.clamp(-1, 1)


class PairSampler:
    """Draws FaceDancer batches from a data set with its own seeded generator,
    whose state a checkpoint keeps (a resumed run draws the same batches)."""

    def __init__(self, dataset: FaceDataset, config: DataConfig, seed: int) -> None:
        self.dataset, self.config = dataset, config
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self) -> Batch:
        n, size = len(self.dataset), self.config.batch_size
        target = torch.randint(n, (size,), generator=self.generator)
        source = torch.randint(n, (size,), generator=self.generator)
        same = same_flags(size, self.config.same_ratio, self.generator)
        source = torch.where(same, target, source)
        target_images = colour_jitter(
            self.dataset.load(target.tolist()), self.config, self.generator
        )
        source_images = colour_jitter(
            self.dataset.load(source.tolist()), self.config, self.generator
        )
        return Batch(target_images, source_images, same)


__all__ = [
    "Batch",
    "FaceCache",
    "FaceDataset",
    "PairSampler",
    "aligned_faces",
    "colour_jitter",
    "find_media",
    "read_video_frames",
    "same_flags",
]
