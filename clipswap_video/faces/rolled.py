"""Faces rolled in the picture: extra detection passes on the image turned by a
quarter turn, merged with the upright pass, and the geometry that carries a
face from a turned or scaled image back to the frame.

The detectors learnt from mostly upright faces (WIDER FACE, dlib's frontal
HOG model). Past a few tens of degrees of roll they miss a face, or, as
RetinaFace does with a large one, still find it with landmarks drifted off the
eyes and mouth; the alignment to the ArcFace template is only as good as those
landmarks. Turning the image by a quarter turn with np.rot90 is exact and
costs a copy, so a face rolled by about 90 degrees either way is near upright
in one of the passes. Nothing here depends on the backend: any `detect`
callable will do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.faces.types import Face, box_iou

QUARTER_TURNS = (1, -1)
"""The extra passes, in counter-clockwise quarter turns of the image."""
# Each pass frames a rolled face its own way: the boxes of one face from two
# passes overlapped by 0.42 at the least (40 px faces, rolls of +-120 degrees).
SAME_FACE_IOU = 0.3
"""Box overlap above which two passes found the same face."""

Detect = Callable[[RgbImage], list[Face]]
"""A backend's full detection: faces in the given image's pixels."""


def detect_rolled(
    detect: Detect,
    image: RgbImage,
    upright: Sequence[Face],
    quarter_turns: Sequence[int] = QUARTER_TURNS,
) -> list[Face]:
    """`upright` (what `detect` found in `image`) together with the faces it
    finds in `image` turned by each of `quarter_turns`, in `image` pixels, best
    score first. A face found by several passes is kept once, from the pass
    that scored it highest. The score is the better judge of which pass
    measured it well: a detector can place the landmarks of a face it sees
    sideways level but wrong, so the pass in which the face looks least rolled
    is not always the right one.
    """
    passes = [list(upright)]
    for turns in quarter_turns:
        turned = np.ascontiguousarray(np.rot90(image, turns))
        passes.append([unrotate_face(face, turns, turned.shape) for face in detect(turned)])
    return _one_per_face(passes)


def _one_per_face(passes: list[list[Face]]) -> list[Face]:
    """The faces of all passes, best score first, without the doubles: a face
    overlapping a better one from another pass (each pass has already
    suppressed its own doubles, and two faces may overlap within one)."""
    ranked = sorted(
        ((face, index) for index, faces in enumerate(passes) for face in faces),
        key=lambda pair: -pair[0].score,
    )
    kept: list[tuple[Face, int]] = []
    for face, index in ranked:
        others = [k.box for k, other in kept if other != index]
        if not others or box_iou(np.stack(others), face.box).max() < SAME_FACE_IOU:
            kept.append((face, index))
    return [face for face, _ in kept]


def transform_face(face: Face, matrix: np.ndarray) -> Face:
    """`face` carried by the (2, 3) affine `matrix` (a scaling, shift or rotation)
    from one image's pixels to another's.

    The box stays a box around the same centre. Its sides are exact when the
    matrix keeps the axes (a scaling, a shift, a quarter turn); in between they
    blend the face's width and height by cos² and sin² of the turn. The bounds
    of the turned corners would be the other choice, but they grow the box by
    up to √2 at 45 degrees while the face does not grow: the size the tracker,
    the refresh window and the largest-face choice read from the box would jump
    whenever the face rolls, and RetinaFace's own boxes of rolled faces stay
    about the face's size.
    """
    linear = np.asarray(matrix, np.float64)[:, :2]
    sides = (linear**2 @ (face.box[2:] - face.box[:2])) / np.linalg.norm(linear, axis=1)
    centre = affine_points(matrix, (face.box[:2] + face.box[2:])[None] / 2)[0]
    box = np.concatenate([centre - sides / 2, centre + sides / 2]).astype(np.float32)
    dense = None if face.landmarks_dense is None else affine_points(matrix, face.landmarks_dense)
    return face.with_(
        box=box, landmarks_5=affine_points(matrix, face.landmarks_5), landmarks_dense=dense
    )


def affine_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(K, 2) points mapped by a (2, 3) affine matrix, as float32."""
    matrix = np.asarray(matrix, np.float64)
    mapped = np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return mapped.astype(np.float32)


def unrotate_face(face: Face, quarter_turns: int, upright_size: tuple[int, ...]) -> Face:
    """`face` found in `np.rot90(stored, quarter_turns)` mapped back to stored pixels."""
    return transform_face(face, _unturn_matrix(quarter_turns, upright_size))


def unrotate_points(
    points: np.ndarray, quarter_turns: int, upright_size: tuple[int, ...]
) -> np.ndarray:
    """(K, 2) points in a `np.rot90(stored, quarter_turns)` image -> stored pixels."""
    return affine_points(_unturn_matrix(quarter_turns, upright_size), points)


def _unturn_matrix(quarter_turns: int, upright_size: tuple[int, ...]) -> np.ndarray:
    """The (2, 3) matrix from pixels of `np.rot90(stored, quarter_turns)`, whose
    height and width are `upright_size`, back to stored pixels.

    Pixel centres sit at integer coordinates (the OpenCV and dlib convention),
    so a turn maps a stored x to W - 1 - x.
    """
    matrix = np.eye(3)
    height, width = upright_size[:2]
    for _ in range(quarter_turns % 4):
        # One counter-clockwise turn took stored (x, y) to (y, W_stored - 1 - x),
        # and W_stored is the turned image's height: undo it.
        undo = np.array([[0.0, -1.0, height - 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = undo @ matrix
        height, width = width, height
    return matrix[:2]


__all__ = [
    "QUARTER_TURNS",
    "SAME_FACE_IOU",
    "Detect",
    "affine_points",
    "detect_rolled",
    "transform_face",
    "unrotate_face",
    "unrotate_points",
]
