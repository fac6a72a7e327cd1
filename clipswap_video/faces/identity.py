"""The identity of the source person, from one or several photos.

Each photo's chosen face is embedded by the detector backend; several photos
give the mean of their unit embeddings, re-normalised, which is steadier than
any single photo (lighting, pose and expression average out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.errors import NoFaceError
from clipswap_video.faces.detect import FaceDetector, scaled_face
from clipswap_video.faces.rolled import SAME_FACE_IOU, detect_rolled
from clipswap_video.faces.types import Embedding, Face, box_iou, unit
from clipswap_video.media.image import read_image

# Photos smaller than this are searched again at twice the size when no face is
# found at first: dlib's HOG window is 80 px, too big for a small face in a small photo.
_UPSCALE_BELOW = 1200


@dataclass(frozen=True)
class SourceIdentity:
    """The embedding to swap in, and the face it came from in each photo.

    Attributes:
        embedding: unit-length mean embedding.
        faces: the chosen face of each photo (landmarks for crops, embedding).
        images: the photos, decoded RGB, in the order given.
        paths: the photos' paths.
        notes: one-line warnings for the user (e.g. a photo with several faces).
    """

    embedding: Embedding
    faces: tuple[Face, ...]
    images: tuple[RgbImage, ...]
    paths: tuple[Path, ...]
    notes: tuple[str, ...] = ()


def source_identity(
    detector: FaceDetector,
    paths: Sequence[Path],
    source_face: int | str = 0,
    *,
    one_pass: bool = False,
    what: str = "source image",
) -> SourceIdentity:
    """Finds and embeds the source face of every photo in `paths`.

    Args:
        detector: the face backend.
        paths: one or more photos of the same person.
        source_face: 0 = the largest face of each photo; N = the Nth face from the
            left; "score" = the highest-scoring.
        one_pass: find the faces as the papers' scripts do (see detect_still).
        what: how the photos are named in messages.

    Raises:
        NoFaceError: a photo without a face (or without an Nth face).
        InputNotFoundError / UnreadableInputError: a photo that cannot be read.
    """
    faces, images, notes = [], [], []
    for path in paths:
        image = read_image(path, what=what)
        found = detect_still(detector, image, one_pass=one_pass)
        face, note = _choose(found, source_face, path, what)
        faces.append(detector.embed(image, [face])[0])
        images.append(image)
        notes.extend([note] if note else [])
    embedding = mean_embedding([face.embedding for face in faces if face.embedding is not None])
    return SourceIdentity(embedding, tuple(faces), tuple(images), tuple(paths), tuple(notes))


def detect_still(detector: FaceDetector, image: RgbImage, *, one_pass: bool = False) -> list[Face]:
    """Faces of a photo, also searched a quarter turn each way: a head lying
    sideways, or a photo saved sideways without its orientation tag, is often
    found upright too but with its landmarks off the eyes, so the best-scoring
    pass measures each face. The turned passes add faces only to a photo in which
    the upright pass found none (a turned busy background can show false faces).
    A small photo without a found face is tried at twice its size. With
    `one_pass`, the detector's one upright pass only, as the papers' scripts do."""
    if one_pass:
        return detector.detect(image, still=True)
    search = lambda picture: _detect_or_enlarge(detector, picture)  # noqa: E731
    upright = search(image)
    every_pass = detect_rolled(search, image, upright)
    if not upright:
        return every_pass
    boxes = np.stack([face.box for face in upright])
    return [face for face in every_pass if box_iou(face.box, boxes).max() >= SAME_FACE_IOU]


def _detect_or_enlarge(detector: FaceDetector, image: RgbImage) -> list[Face]:
    faces = detector.detect(image, still=True)
    if faces or max(image.shape[:2]) >= _UPSCALE_BELOW:
        return faces
    larger = cast(RgbImage, cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    return [scaled_face(face, 0.5) for face in detector.detect(larger, still=True)]


def mean_embedding(embeddings: Sequence[Embedding]) -> Embedding:
    """Mean of unit embeddings, re-normalised."""
    return unit(np.mean(np.stack(embeddings), axis=0))


def _choose(faces: list[Face], source_face: int | str, path: Path, what: str) -> tuple[Face, str]:
    if not faces:
        raise NoFaceError(
            f"no face found in {what} {path}; use a photo where the face is clear, "
            "frontal and at least about 80 pixels wide"
        )
    if source_face in (0, "score"):
        by_score = source_face == "score"
        key = (lambda face: face.score) if by_score else (lambda face: face.size)
        note = ""
        if len(faces) > 1:
            note = (
                f"{what} {path} has {len(faces)} faces; using the "
                f"{'highest-scoring' if by_score else 'largest'} "
                "(choose another with --source-face N, N counted from the left)"
            )
        return max(faces, key=key), note
    assert isinstance(source_face, int)
    if source_face > len(faces):
        raise NoFaceError(f"{what} {path} has {len(faces)} face(s); there is no face {source_face}")
    from_left = sorted(faces, key=lambda face: float(face.box[0]))
    return from_left[source_face - 1], ""


__all__ = ["SourceIdentity", "detect_still", "mean_embedding", "source_identity"]
