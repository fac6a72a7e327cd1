"""`clipswap-video evaluate SRC IN OUT`: did the swap work, is it stable, is the
rest of the picture untouched?

- identity: on sampled frames, the face of OUT and of IN (at the place the
  bundled RetinaFace-MobileNet found it in IN) are embedded with dlib's descriptor; a frame counts
  as transferred when OUT's face is nearer the source than IN's face is.
- neural identity, when ArcFace-Res50's weights are found: the same faces'
  cosine similarities through the network the clipswap swap itself uses, so
  a second column beside dlib's, not an independent judge (reports/_arcface.py).
- flicker: mean absolute frame-to-frame change inside the face boxes, OUT over IN.
- background: PSNR of OUT against a passthrough re-encode of IN (same encoder
  settings, no swap) outside the face regions, so encoding loss is not
  counted as damage.
- coverage: of the frames of IN with a face, the share whose OUT changed a
  face box by more than encoding noise (against that same passthrough).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from clipswap_video.config import Settings
from clipswap_video.errors import UnreadableInputError
from clipswap_video.faces import (
    Face,
    FaceAnalyzer,
    SourceIdentity,
    create_detector,
    embedding_distance,
    source_identity,
)
from clipswap_video.faces.types import box_region
from clipswap_video.media import VideoReader, probe
from clipswap_video.pipeline import run_video
from clipswap_video.reports._arcface import (
    PER_FACE_KEYS,
    ArcFaceEmbedder,
    IdentityCosines,
    aligned_crops,
    find_arcface,
    unmeasured,
)

SAMPLES = 30
_BACKGROUND_MARGIN = 0.6  # face box grown by this fraction per side: the swap's reach
_SWAPPED_LEVELS = 8.0  # mean |output - plain re-encode| in a face box above which it was swapped


@dataclass
class _Sums:
    transferred: int = 0
    sampled: int = 0  # faces
    sampled_frames: int = 0
    to_source: float = 0.0
    to_target: float = 0.0
    flicker_out: float = 0.0
    flicker_in: float = 0.0
    squared_error: float = 0.0
    background_pixels: int = 0
    face_frames: int = 0  # frames of the input with a face
    swapped_frames: int = 0  # of those, frames whose output changed a face


def evaluate(
    source: Path,
    input_video: Path,
    output_video: Path,
    settings: Settings,
    *,
    samples: int = SAMPLES,
    weights_dir: Path | None = None,
    arcface: bool = True,
    on_start: Callable[[int | None], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The metrics as one JSON-ready dict (keys in the module docstring's order).

    `weights_dir` is searched first for ArcFace-Res50; with `arcface` False its
    keys are left out (without its weights they are null). `on_start(frames)`
    is called once every input has been checked.
    """
    frame_count = probe(input_video).video.frame_count
    probe(output_video)  # a missing or broken OUT fails before the long part
    faces_settings = replace(settings.faces, detector="retinaface_mobile", select="all")
    detector = create_detector(faces_settings)
    identity = source_identity(detector, [source])
    neural = _identity_net(identity, settings, weights_dir) if arcface else None
    if on_start is not None:
        on_start(frame_count)
    with tempfile.TemporaryDirectory(prefix="clipswap-eval-") as scratch:
        passthrough = Path(scratch) / f"passthrough{output_video.suffix or '.mp4'}"
        plain = replace(settings, swap=replace(settings.swap, swapper="none"))
        run_video(source, input_video, passthrough, plain)
        with VideoReader(input_video) as original, VideoReader(output_video) as swapped:
            analyzer = FaceAnalyzer(
                detector, faces_settings, settings.track, original.info.video.rotation
            )
            total = original.info.video.frame_count or 0
            every = max(1, total // samples) if total else 10
            sums = _Sums()
            with VideoReader(passthrough) as reference:
                frames = _lockstep(original, swapped, reference, output_video)
                previous: tuple[np.ndarray, np.ndarray] | None = None
                for index, (before, after, plain_frame) in enumerate(frames):
                    faces = analyzer.analyse(before)
                    if faces and index % every == 0:
                        sums.sampled_frames += 1
                        _identity(sums, detector, before, after, faces, identity.embedding)
                        if neural is not None:
                            neural.add(before, after, faces)
                    if previous is not None and faces:
                        _flicker(sums, previous, (before, after), faces)
                    _background(sums, after, plain_frame, faces)
                    _coverage(sums, after, plain_frame, faces)
                    previous = (before, after)
                    if on_frame is not None:
                        on_frame()
    if not arcface:
        return _result(sums, {})
    return _result(sums, neural.figures() if neural else unmeasured(weights_dir))


def _identity_net(
    identity: SourceIdentity, settings: Settings, weights_dir: Path | None
) -> IdentityCosines | None:
    """ArcFace-Res50 on the configured device, with the source photo's face
    embedded; None when its weights are not found."""
    path = find_arcface(weights_dir)
    if path is None:
        return None
    embedder = ArcFaceEmbedder(path, settings.swap.device)
    source = embedder.embed(aligned_crops(identity.images[0], identity.faces[:1]))[0]
    return IdentityCosines(embedder, source)


def _lockstep(
    original: VideoReader, swapped: VideoReader, reference: VideoReader, output: Path
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    streams = (original.frames(), swapped.frames(), reference.frames())
    for before, after, plain in zip(*streams, strict=False):
        yield before.rgb(), after.rgb(), plain.rgb()
    if any(next(stream, None) is not None for stream in streams[:2]):
        raise UnreadableInputError(f"{output} and the input have different frame counts")


def _identity(
    sums: _Sums,
    detector: Any,
    before: np.ndarray,
    after: np.ndarray,
    faces: list[Face],
    source: np.ndarray,
) -> None:
    for face_in, face_out in zip(
        detector.embed(before, faces), detector.embed(after, faces), strict=True
    ):
        out_to_source = embedding_distance(face_out.embedding, source)
        in_to_source = embedding_distance(face_in.embedding, source)
        sums.sampled += 1
        sums.transferred += int(out_to_source < in_to_source)
        sums.to_source += out_to_source
        sums.to_target += embedding_distance(face_out.embedding, face_in.embedding)


def _flicker(
    sums: _Sums,
    previous: tuple[np.ndarray, np.ndarray],
    current: tuple[np.ndarray, np.ndarray],
    faces: list[Face],
) -> None:
    for face in faces:
        region = box_region(face.box, current[0].shape, margin=0.0)
        before_change = np.abs(current[0][region].astype(np.int16) - previous[0][region])
        after_change = np.abs(current[1][region].astype(np.int16) - previous[1][region])
        sums.flicker_in += float(before_change.mean())
        sums.flicker_out += float(after_change.mean())


def _background(sums: _Sums, after: np.ndarray, plain: np.ndarray, faces: list[Face]) -> None:
    outside = np.ones(after.shape[:2], bool)
    for face in faces:
        outside[box_region(face.box, after.shape, margin=_BACKGROUND_MARGIN)] = False
    difference = after[outside].astype(np.float64) - plain[outside]
    sums.squared_error += float((difference**2).sum())
    sums.background_pixels += difference.size


def _coverage(sums: _Sums, after: np.ndarray, plain: np.ndarray, faces: list[Face]) -> None:
    """Counts a frame with a face, and whether the output changed one of its faces
    (against the plain re-encode, so encoding noise does not count)."""
    if not faces:
        return
    sums.face_frames += 1
    for face in faces:
        region = box_region(face.box, after.shape, margin=0.0)
        change = np.abs(after[region].astype(np.float32) - plain[region].astype(np.float32))
        if change.size and float(change.mean()) > _SWAPPED_LEVELS:
            sums.swapped_frames += 1
            return


def _result(sums: _Sums, neural: dict[str, Any]) -> dict[str, Any]:
    """The metrics; `neural`'s summary keys after dlib's, its per-face lists last."""
    summary = {key: value for key, value in neural.items() if key not in PER_FACE_KEYS}
    per_face = {key: value for key, value in neural.items() if key in PER_FACE_KEYS}
    mse = sums.squared_error / max(sums.background_pixels, 1)
    psnr = 10 * math.log10(255.0**2 / mse) if mse > 0 else math.inf
    return {
        "identity_transfer": round(sums.transferred / sums.sampled, 3) if sums.sampled else None,
        "dist_to_source": round(sums.to_source / sums.sampled, 4) if sums.sampled else None,
        "dist_to_target": round(sums.to_target / sums.sampled, 4) if sums.sampled else None,
        **summary,
        "flicker_ratio": round(sums.flicker_out / sums.flicker_in, 3) if sums.flicker_in else None,
        "background_psnr_db": round(psnr, 2) if math.isfinite(psnr) else None,
        "frames_evaluated": sums.sampled_frames,
        "coverage": round(sums.swapped_frames / sums.face_frames, 3) if sums.face_frames else None,
        "frames_with_faces": sums.face_frames,
        "frames_swapped": sums.swapped_frames,
        **per_face,
    }


__all__ = ["SAMPLES", "evaluate"]
