"""Alignment: 5-point similarity transforms to the ArcFace template, and batched
crop / paste-back warps in torch.

The template and the rule "least-squares similarity (Umeyama 1991) from the 5
landmarks to the template, scaled to the crop size" are those of insightface's
`estimate_norm`, which FaceDancer and ClipSwap use unchanged
(docs/models.md, section 2). Crops of 112 px feed
identity networks, crops of 256 px the generator.

The warps are `affine_grid`/`grid_sample` (bilinear, zero border), built so that
they reproduce `cv2.warpAffine(image, M, size)` with the same 2x3 matrix M
(frame pixel -> crop pixel), on whatever device the tensors live.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float64,
)
"""Left eye, right eye, nose tip, left and right mouth corner in a 112 x 112 crop."""

Matrix = npt.NDArray[np.float64]
"""(2, 3) affine matrix, or (N, 2, 3) for a batch."""


def arcface_template(size: int) -> npt.NDArray[np.float64]:
    """The template scaled to a `size` x `size` crop (256 -> 87.53, 118.16, ...)."""
    return ARCFACE_TEMPLATE_112 * (size / 112.0)


def estimate_similarity(source: npt.ArrayLike, target: npt.ArrayLike) -> Matrix:
    """Least-squares similarity (rotation, uniform scale, translation) taking
    `source` points onto `target` points (Umeyama's closed form, with scale).

    Args:
        source: (K, 2) points, K >= 2.
        target: (K, 2) points.

    Returns:
        (2, 3) matrix M with target ~= M @ [x, y, 1].
    """
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    variance = (src_centred**2).sum() / len(src)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def alignment_matrices(landmarks_5: npt.ArrayLike, size: int) -> Matrix:
    """(N, 2, 3) frame -> crop matrices for (N, 5, 2) landmarks and a `size` crop."""
    points = np.asarray(landmarks_5, np.float64).reshape(-1, 5, 2)
    template = arcface_template(size)
    return np.stack([estimate_similarity(face, template) for face in points]).reshape(-1, 2, 3)


def invert_affine(matrices: Matrix) -> Matrix:
    """Exact inverses of (..., 2, 3) affine matrices (crop -> frame)."""
    full = _to_3x3(matrices)
    return np.asarray(np.linalg.inv(full)[..., :2, :], np.float64)


def warp_crops(
    frames: torch.Tensor, matrices: Matrix, size: int, frame_index: torch.Tensor | None = None
) -> torch.Tensor:
    """Aligned `size` x `size` crops, like `cv2.warpAffine(frame, M, (size, size))`.

    Args:
        frames: (F, C, H, W) float images.
        matrices: (N, 2, 3) frame -> crop matrices.
        size: crop side.
        frame_index: (N,) which frame each crop comes from (default: crop i from frame i).

    Returns:
        (N, C, size, size), zeros outside the frame.
    """
    sources = frames if frame_index is None else frames[frame_index]
    height, width = frames.shape[-2:]
    crop_to_frame = invert_affine(np.asarray(matrices, np.float64).reshape(-1, 2, 3))
    theta = _grid_theta(crop_to_frame, source_size=(height, width), target_size=(size, size))
    return _sample(sources, theta, (size, size))


def warp_back(crops: torch.Tensor, matrices: Matrix, frame_size: tuple[int, int]) -> torch.Tensor:
    """Crops put back into frame space, like `cv2.warpAffine(crop, M^-1, (W, H))`.

    Args:
        crops: (N, C, s, s) float crops (images or masks).
        matrices: (N, 2, 3) the frame -> crop matrices the crops were made with.
        frame_size: (H, W) of the frame.

    Returns:
        (N, C, H, W), zeros where the crop does not reach.
    """
    size = crops.shape[-2:]
    frame_to_crop = np.asarray(matrices, np.float64).reshape(-1, 2, 3)
    theta = _grid_theta(frame_to_crop, source_size=(size[0], size[1]), target_size=frame_size)
    return _sample(crops, theta, frame_size)


def _grid_theta(
    target_to_source: Matrix, *, source_size: tuple[int, int], target_size: tuple[int, int]
) -> npt.NDArray[np.float64]:
    # affine_grid maps normalised target coordinates to normalised source ones:
    # theta = N_s @ T @ D, with D normalised target -> target pixel, T target
    # pixel -> source pixel, N_s source pixel -> normalised source
    # (align_corners=False conventions).
    (src_h, src_w), (dst_h, dst_w) = source_size, target_size
    to_target_pixel = np.array(
        [[dst_w / 2, 0, (dst_w - 1) / 2], [0, dst_h / 2, (dst_h - 1) / 2], [0, 0, 1]]
    )
    to_source_normal = np.array([[2 / src_w, 0, 1 / src_w - 1], [0, 2 / src_h, 1 / src_h - 1]])
    return to_source_normal @ _to_3x3(target_to_source) @ to_target_pixel


def _sample(
    images: torch.Tensor, theta: npt.NDArray[np.float64], size: tuple[int, int]
) -> torch.Tensor:
    dtype = images.dtype if images.is_floating_point() else torch.float32
    theta_tensor = torch.as_tensor(theta, dtype=torch.float32, device=images.device)
    grid = F.affine_grid(theta_tensor, [len(images), images.shape[1], *size], align_corners=False)
    return F.grid_sample(
        images.to(dtype), grid.to(dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _to_3x3(matrices: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    bottom = np.zeros((*matrices.shape[:-2], 1, 3))
    bottom[..., 0, 2] = 1.0
    return np.concatenate([matrices, bottom], axis=-2)


__all__ = [
    "ARCFACE_TEMPLATE_112",
    "alignment_matrices",
    "arcface_template",
    "estimate_similarity",
    "invert_affine",
    "warp_back",
    "warp_crops",
]
