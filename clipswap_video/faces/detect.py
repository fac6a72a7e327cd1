"""The face detector interface and the helpers every backend shares.

A backend finds faces (box, score, 5 landmarks), re-estimates landmarks inside
known boxes (the cheap per-frame refresh the tracker uses between full
detections), and computes identity embeddings. The backends import this
module, never the other way round; clipswap_video.faces.backends names and
builds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, cast, runtime_checkable

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config_sections import FaceSettings
from clipswap_video.faces.types import Face, FaceBox, Landmarks


@runtime_checkable
class FaceDetector(Protocol):
    """What the tracker, selection and source identity need from a backend."""

    name: str
    match_distance: float
    """Cosine distance under which two of this backend's embeddings are one person."""

    def detect(self, image: RgbImage, *, still: bool = False) -> list[Face]:
        """Faces with box, score and 5 landmarks, in `image` pixels, best score
        first; `still`: a photo rather than a video frame (see detection_input)."""
        ...

    def refresh(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """The same faces with landmarks re-estimated inside their boxes (no search)."""
        ...

    def embed(self, image: RgbImage, faces: Sequence[Face]) -> list[Face]:
        """The same faces with `embedding` set (unit length)."""
        ...


def refresh_near(faces: Sequence[Face], find_near: Callable[[Face], Face | None]) -> list[Face]:
    """Each face as `find_near` re-finds it near its box, keeping its track id and
    embedding; faces not found (gone, turned away, hidden) are left out, so the
    tracker notices at once."""
    refreshed = []
    for face in faces:
        found = find_near(face)
        if found is not None:
            refreshed.append(found.with_(track_id=face.track_id, embedding=face.embedding))
    return refreshed


def downscale(image: RgbImage, longest_side: int) -> tuple[RgbImage, float]:
    """`image` shrunk so its longest side is at most `longest_side` (0 = no limit).

    Returns the image and the factor from original to returned pixels (<= 1).
    """
    height, width = image.shape[:2]
    if longest_side <= 0 or max(height, width) <= longest_side:
        return image, 1.0
    scale = longest_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cast(RgbImage, cv2.resize(image, size, interpolation=cv2.INTER_AREA)), scale


PAPER_WIDTH = 640
"""The papers' detection width: frames are divided by W // 640 (integer steps)."""


def detection_input(
    image: RgbImage, settings: FaceSettings, smallest_found: float = 0, *, still: bool = False
) -> RgbImage:
    """The image a detector searches for `image`'s faces.

    `faces.detect_size` "paper" is the papers' rule: frames shrunk by
    paper_downscale, photos (`still`) searched at full size. A number
    is the longest side (0 = full size), raised as far as needed for a face of
    `faces.min_size` frame pixels to measure `smallest_found` pixels (the
    detector's limit; 0 = no limit) at the detection scale, never above full size.
    """
    if settings.detect_size == "paper":
        return image if still else paper_downscale(image)
    side = settings.detect_size
    longest = max(image.shape[:2])
    if side > 0 and settings.min_size > 0 and smallest_found > 0:
        needed = math.ceil(longest * smallest_found / settings.min_size)
        side = min(longest, max(side, needed))
    return downscale(image, side)[0]


def paper_downscale(image: RgbImage) -> RgbImage:
    """`image` shrunk as ClipSwap's and FaceDancer's scripts do: by the integer
    step W // 640 (1 up to 1279 px wide) to (W // step, H // step), linearly;
    a portrait frame goes by its width too."""
    height, width = image.shape[:2]
    step = width // PAPER_WIDTH if width > PAPER_WIDTH else 1
    if step == 1:
        return image
    size = (width // step, height // step)
    return cast(RgbImage, cv2.resize(image, size, interpolation=cv2.INTER_LINEAR))


def score_threshold(setting: float | str, own: float, stored: float | None = None) -> float:
    """`faces.min_score` as a number for a backend whose own threshold is `own`:
    0 is `own`, "file" the one its weight file stores (`own` when it stores none)."""
    if setting == "file":
        return own if stored is None else stored
    return float(setting) or own


def keep_faces(faces: list[Face], *, min_size: float) -> list[Face]:
    """Faces at least `min_size` pixels, best score first."""
    kept = [face for face in faces if face.size >= min_size]
    return sorted(kept, key=lambda face: -face.score)


def scaled_face(face: Face, factor: float) -> Face:
    """`face` with box and landmarks multiplied by `factor` (small image -> frame)."""
    if factor == 1.0:
        return face
    dense = None if face.landmarks_dense is None else face.landmarks_dense * factor
    return face.with_(
        box=(face.box * factor).astype(np.float32),
        landmarks_5=(face.landmarks_5 * factor).astype(np.float32),
        landmarks_dense=dense,
    )


def follow_landmarks(box: FaceBox, before: Landmarks, after: Landmarks) -> FaceBox:
    """`box` moved and scaled as the landmarks moved from `before` to `after`.

    Keeps a track's box on the face between full detections, so the next
    landmark refresh starts from the right place.
    """
    centre_before, centre_after = before.mean(0), after.mean(0)
    spread_before = float(np.linalg.norm(before - centre_before, axis=1).mean())
    spread_after = float(np.linalg.norm(after - centre_after, axis=1).mean())
    scale = spread_after / spread_before if spread_before > 1e-6 else 1.0
    box_centre = (box[:2] + box[2:]) / 2
    half = (box[2:] - box[:2]) / 2 * scale
    new_centre = centre_after + (box_centre - centre_before) * scale
    return np.concatenate([new_centre - half, new_centre + half]).astype(np.float32)


__all__ = [
    "PAPER_WIDTH",
    "FaceDetector",
    "detection_input",
    "downscale",
    "follow_landmarks",
    "keep_faces",
    "paper_downscale",
    "scaled_face",
    "score_threshold",
]
