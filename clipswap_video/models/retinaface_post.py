"""RetinaFace's post-processing: priors, decoding, NMS (docs/models.md, section 3),
the graph's TFOpLambda nodes written out.

Split between the device and the host so that a batch costs one transfer: on
the head outputs' device, every image's best MAX_CANDIDATES anchors are picked,
best first, and decoded (no step there waits for the device); one copy brings
them to the host, where the score threshold and greedy NMS run in NumPy. Before
(issue 18), each image had a `nonzero` that waited for the device and NMS's
(N, N) IoU matrix copied to the host (16 MB at N = 2000).

    [found] = select_detections(boxes, landmarks, classes, (height, width), spec, 0.5)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import torch

MAX_CANDIDATES = 2000
"""Best-scoring anchors of an image kept for NMS."""

Floats = npt.NDArray[np.float32]


class Detections(NamedTuple):
    """Faces of one image on the host, best score first, coordinates normalised to [0, 1]."""

    boxes: Floats
    """(K, 4) x1, y1, x2, y2."""
    landmarks: Floats
    """(K, 5, 2) eyes, nose, mouth corners (the image's left first)."""
    scores: Floats
    """(K,) face probability."""


class PostSpec(Protocol):
    """What post-processing reads of a models.retinaface.RetinaFaceSpec."""

    @property
    def min_sizes(self) -> tuple[tuple[int, ...], ...]: ...
    @property
    def steps(self) -> tuple[int, ...]: ...
    @property
    def variances(self) -> tuple[float, float]: ...
    @property
    def nms_iou(self) -> float: ...


def select_detections(
    boxes: torch.Tensor,
    landmarks: torch.Tensor,
    classes: torch.Tensor,
    size: tuple[int, int],
    spec: PostSpec,
    min_score: float,
) -> list[Detections]:
    """A batch's head outputs (N, P, 4), (N, P, 10), (N, P, 2) on (height, width)
    inputs -> each image's faces scoring >= `min_score`, decoded, after NMS.

    Ties in score keep the anchors' order. The one copy to the host is the
    only step that waits for the device.
    """
    rows = candidates(boxes, landmarks, classes, size, spec).cpu().numpy()
    return [_suppress(image_rows, min_score, spec.nms_iou) for image_rows in rows]


def candidates(
    boxes: torch.Tensor,
    landmarks: torch.Tensor,
    classes: torch.Tensor,
    size: tuple[int, int],
    spec: PostSpec,
) -> torch.Tensor:
    """(N, K, 15) each image's K best anchors, best first, decoded on the outputs'
    device: box x1, y1, x2, y2, 5 landmarks x, y, score."""
    scores = classes[..., 1].float()
    k = min(MAX_CANDIDATES, scores.shape[1])
    order = _by_score(scores).topk(k, dim=1).indices
    scores = scores.gather(1, order)
    anchors = cached_priors(size, spec.min_sizes, spec.steps, boxes.device, boxes.dtype)
    box, points = decode(
        boxes.gather(1, order[..., None].expand(-1, -1, 4)),
        landmarks.gather(1, order[..., None].expand(-1, -1, 10)),
        anchors[order],
        spec.variances,
    )
    return torch.cat([box, points.flatten(-2), scores[..., None]], dim=-1)


def _by_score(scores: torch.Tensor) -> torch.Tensor:
    """(N, P) int64 keys in the order of (N, P) non-negative float32 scores, ties
    broken by the anchor's index (the lower first), so that a `topk` of them is a
    stable sort's first k on any device (a tenth of the time of sorting all)."""
    bits = scores.view(torch.int32).long()  # non-negative floats sort like their bits
    index = torch.arange(scores.shape[1], device=scores.device)
    return bits * 2**32 + (2**32 - 1 - index)


def _suppress(rows: Floats, min_score: float, iou: float) -> Detections:
    """One image's (K, 15) candidates, best first -> those scoring >= `min_score`
    that NMS keeps."""
    passing = rows[rows[:, 14] >= np.float32(min_score)]  # float32, as torch compares
    kept = passing[nms(passing[:, :4], passing[:, 14], iou)]
    return Detections(
        np.ascontiguousarray(kept[:, :4]),
        np.ascontiguousarray(kept[:, 4:14]).reshape(-1, 5, 2),
        np.ascontiguousarray(kept[:, 14]),
    )


@functools.lru_cache(maxsize=16)
def cached_priors(
    size: tuple[int, int],
    min_sizes: tuple[tuple[int, ...], ...],
    steps: tuple[int, ...],
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """`priors` of a (height, width) input on `device`, made and copied there once
    per size: a video's frames share one detection size, its refresh windows one
    canvas. Callers must not write to it."""
    return priors(size[0], size[1], min_sizes, steps).to(device, dtype)


def priors(
    height: int, width: int, min_sizes: Sequence[Sequence[int]], steps: Sequence[int]
) -> torch.Tensor:
    """(P, 4) anchors cx, cy, w, h normalised to the image: per level ceil(H/s) x
    ceil(W/s) cells in row-major order, each with one anchor per min size."""
    levels = []
    for sizes, step in zip(min_sizes, steps, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy = (torch.arange(rows, dtype=torch.float32) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float32) + 0.5) * step / width
        grid_y, grid_x = torch.meshgrid(cy, cx, indexing="ij")
        centres = torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 1, 2)
        extent = torch.tensor([[m / width, m / height] for m in sizes], dtype=torch.float32)
        cells = centres.expand(-1, len(sizes), 2)
        levels.append(torch.cat([cells, extent.expand_as(cells)], dim=-1).reshape(-1, 4))
    return torch.cat(levels)


def decode(
    boxes: torch.Tensor,
    landmarks: torch.Tensor,
    anchors: torch.Tensor,
    variances: tuple[float, float] = (0.1, 0.2),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deltas (..., 4) and (..., 10) -> (..., 4) x1, y1, x2, y2 and (..., 5, 2)
    landmarks, normalised like the (..., 4) `anchors`."""
    centre, extent = anchors[..., :2], anchors[..., 2:]
    middle = centre + boxes[..., :2] * variances[0] * extent
    size = extent * torch.exp(boxes[..., 2:] * variances[1])
    points = (
        centre[..., None, :]
        + landmarks.reshape(*landmarks.shape[:-1], 5, 2) * variances[0] * extent[..., None, :]
    )
    return torch.cat([middle - size / 2, middle + size / 2], dim=-1), points


def nms(boxes: Floats, scores: Floats, iou: float) -> npt.NDArray[np.intp]:
    """Indices kept by greedy NMS, best score first (ties in index order); a box
    goes when its IoU with a kept one exceeds `iou` (tf.image.non_max_suppression's
    rule)."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    areas = np.maximum(boxes[:, 2:] - boxes[:, :2], 0).prod(axis=1)
    alive = np.ones(len(order), bool)
    for index in range(len(order)):
        if alive[index]:
            alive[index + 1 :] &= _iou_after(boxes, areas, index) <= np.float32(iou)
    return order[alive]


def _iou_after(boxes: Floats, areas: Floats, index: int) -> Floats:
    """IoU of x1, y1, x2, y2 box `index` with each box after it, in float32."""
    box, others = boxes[index], boxes[index + 1 :]
    top_left = np.maximum(box[:2], others[:, :2])
    bottom_right = np.minimum(box[2:], others[:, 2:])
    overlap = np.maximum(bottom_right - top_left, 0).prod(axis=1)
    union = areas[index] + areas[index + 1 :] - overlap
    return np.where(union > 0, overlap / np.maximum(union, np.float32(1e-12)), np.float32(0))


__all__ = [
    "MAX_CANDIDATES",
    "Detections",
    "PostSpec",
    "cached_priors",
    "candidates",
    "decode",
    "nms",
    "priors",
    "select_detections",
]
