"""What face analysis produces: faces with boxes, scores, landmarks and embeddings.

Every array is in the pixel coordinates of the frame as stored (x right, y down),
landmark order as in the ArcFace template: left eye, right eye, nose tip, left
mouth corner, right mouth corner (the image's left first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

FaceBox = npt.NDArray[np.float32]
"""(4,) x1, y1, x2, y2: a detector's box around a face (float pixels)."""
Landmarks = npt.NDArray[np.float32]
"""(K, 2) x, y."""
Embedding = npt.NDArray[np.float32]
"""(D,) unit length."""


@dataclass(frozen=True, eq=False)
class Face:
    """One face in one image.

    Attributes:
        box: the detector's box.
        score: the detector's confidence (dlib: HOG margin; insightface: probability).
        landmarks_5: (5, 2) eyes, nose, mouth corners.
        landmarks_dense: 68 (dlib) or 106 (insightface) points, when computed.
        embedding: unit-length identity descriptor, when computed.
        track_id: the tracker's id, None for a still image.
    """

    box: FaceBox
    score: float
    landmarks_5: Landmarks
    landmarks_dense: Landmarks | None = None
    embedding: Embedding | None = None
    track_id: int | None = None

    @property
    def size(self) -> float:
        """Side of the square with the box's area: the scale of the face in pixels."""
        width, height = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return float(np.sqrt(max(width, 0.0) * max(height, 0.0)))

    def with_(self, **changes: object) -> Face:
        """A copy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]


def unit(vector: npt.ArrayLike) -> Embedding:
    """`vector` scaled to unit length, as float32."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    return array / max(float(np.linalg.norm(array)), 1e-12)


def embedding_distance(a: Embedding, b: Embedding) -> float:
    """Cosine distance of two unit embeddings: 0 same direction, 1 orthogonal, 2 opposite."""
    return float(1.0 - np.dot(a, b))


def box_region(
    box: npt.NDArray[np.float32], shape: tuple[int, ...], *, margin: float = 0.0
) -> tuple[slice, slice]:
    """The (rows, columns) of an image of `shape` that `box` covers, grown by
    `margin` of its size on each side and clipped to the image."""
    grow = (box[2:4] - box[:2]) * margin
    x0, y0 = np.maximum(np.floor(box[:2] - grow), 0).astype(int)
    x1 = min(int(np.ceil(box[2] + grow[0])), shape[1])
    y1 = min(int(np.ceil(box[3] + grow[1])), shape[0])
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of (N, 4) and (M, 4) boxes -> (N, M)."""
    a, b = np.asarray(a, np.float32).reshape(-1, 4), np.asarray(b, np.float32).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1e-12), 0.0).astype(np.float32)


__all__ = [
    "Embedding",
    "Face",
    "FaceBox",
    "Landmarks",
    "box_iou",
    "box_region",
    "embedding_distance",
    "unit",
]
