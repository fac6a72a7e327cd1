"""RetinaFace's post-processing: priors, decoding and NMS by hand, and the batched
device/host split against the one-image-at-a-time torch code it replaced (issue 18)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clipswap_video.models.retinaface import RetinaFace, RetinaFaceSpec
from clipswap_video.models.retinaface_post import (
    MAX_CANDIDATES,
    cached_priors,
    decode,
    nms,
    priors,
    select_detections,
)

SPEC = RetinaFaceSpec()


def test_priors_by_hand() -> None:
    anchors = priors(20, 40, [[16, 32]], [8])
    assert anchors.shape == (3 * 5 * 2, 4)
    expected = {
        0: (0.1, 0.2, 0.4, 0.8),
        1: (0.1, 0.2, 0.8, 1.6),
        2: (0.3, 0.2, 0.4, 0.8),
        10: (0.1, 0.6, 0.4, 0.8),
        29: (0.9, 1.0, 0.8, 1.6),
    }
    for row, values in expected.items():
        assert anchors[row].tolist() == pytest.approx(values)


def test_decode_by_hand() -> None:
    anchor = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    deltas = torch.tensor([[1.0, -1.0, math.log(2) / 0.2, 0.0]])
    landmarks = torch.tensor([[1.0, 2.0] * 5])
    boxes, points = decode(deltas, landmarks, anchor)
    assert boxes[0].tolist() == pytest.approx([0.32, 0.26, 0.72, 0.66])
    assert points[0, 3].tolist() == pytest.approx([0.52, 0.58])
    batched, _ = decode(deltas[None].expand(3, 2, 4), landmarks[None].expand(3, 2, 10), anchor)
    assert batched.shape == (3, 2, 4) and torch.equal(batched[2, 1], boxes[0])


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order, kept = list(np.argsort(-scores)), []
    while order:
        best, order = order[0], order[1:]
        kept.append(int(best))
        low = np.maximum(boxes[best, :2], boxes[order, :2])
        high = np.minimum(boxes[best, 2:], boxes[order, 2:])
        overlap = np.clip(high - low, 0, None).prod(1)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou_with_best = overlap / (area(boxes[best]) + area(boxes[order]) - overlap)
        order = [o for o, v in zip(order, iou_with_best, strict=True) if v <= iou]
    return kept


def test_nms_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 1, (300, 2))
    boxes = np.hstack([corners, corners + rng.uniform(0.05, 0.3, (300, 2))]).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    for iou in (0.2, 0.4, 0.7):
        assert nms(boxes, scores, iou).tolist() == _nms_numpy(boxes, scores, iou)


# The torch code this module replaced, one image at a time, with its sort made
# stable: the old one's `argsort` left the order of equal scores to the sort.


def _box_iou_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    union = area_a[:, None] + area_b[None, :] - overlap
    return torch.where(union > 0, overlap / union.clamp(min=1e-12), torch.zeros_like(union))


def _old_select(
    boxes: torch.Tensor,
    landmarks: torch.Tensor,
    classes: torch.Tensor,
    size: tuple[int, int],
    min_score: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    scores = classes[:, 1]
    keep = torch.nonzero(scores >= min_score).flatten()
    keep = keep[scores[keep].argsort(descending=True, stable=True)[:MAX_CANDIDATES]]
    anchors = priors(size[0], size[1], SPEC.min_sizes, SPEC.steps)
    box, points = decode(boxes[keep], landmarks[keep], anchors[keep], SPEC.variances)
    overlaps = _box_iou_torch(box, box)
    alive = torch.ones(len(keep), dtype=torch.bool)
    for index in range(len(keep)):
        if alive[index]:
            alive[index + 1 :] &= overlaps[index, index + 1 :] <= SPEC.nms_iou
    return box[alive], points[alive], scores[keep][alive]


@pytest.mark.parametrize("min_score", [0.02, 0.5, 0.97, 1.1])
def test_the_batched_split_gives_the_old_faces_exactly(min_score: float) -> None:
    """Three images' random heads on a 200 x 360 input (3,150 anchors, so the
    2,000-candidate cut bites at 0.02), scores rounded to 1/64 so that many tie."""
    size = (200, 360)
    count = len(priors(*size, SPEC.min_sizes, SPEC.steps))
    generator = torch.Generator().manual_seed(7)
    boxes = torch.randn(3, count, 4, generator=generator)
    landmarks = torch.randn(3, count, 10, generator=generator)
    face = (torch.rand(3, count, generator=generator) * 64).round() / 64
    classes = torch.stack([1 - face, face], dim=-1)
    found = select_detections(boxes, landmarks, classes, size, SPEC, min_score)
    assert len(found) == 3
    for image, detections in enumerate(found):
        box, points, scores = _old_select(
            boxes[image], landmarks[image], classes[image], size, min_score
        )
        assert len(scores) == len(detections.scores) and (len(scores) > 0) == (min_score < 1)
        np.testing.assert_array_equal(detections.boxes, box.numpy())
        np.testing.assert_array_equal(detections.landmarks, points.numpy())
        np.testing.assert_array_equal(detections.scores, scores.numpy())
        assert detections.boxes.dtype == np.float32 and detections.landmarks.shape[1:] == (5, 2)


def test_priors_are_made_once_per_size_and_device() -> None:
    args = (SPEC.min_sizes, SPEC.steps, torch.device("cpu"), torch.float32)
    first = cached_priors((64, 96), *args)
    assert cached_priors((64, 96), *args) is first
    assert cached_priors((64, 128), *args) is not first
    torch.testing.assert_close(first, priors(64, 96, SPEC.min_sizes, SPEC.steps), rtol=0, atol=0)

    network = RetinaFace(
        RetinaFaceSpec(
            blocks=(1, 1, 1, 1),
            widths=(8, 8, 8, 8),
            features=("conv3_block1_out", "conv4_block1_out", "conv5_block1_out"),
            out_channels=16,
        )
    ).eval()
    images = torch.zeros(1, 3, 48, 80)
    network.detect(images, 0.5)
    hits = cached_priors.cache_info().hits
    network.detect(images, 0.5)
    assert cached_priors.cache_info().hits == hits + 1
