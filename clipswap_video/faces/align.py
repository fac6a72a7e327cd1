"""Alignment: 5-point similarity transforms to the ArcFace template, and batched
crop / paste-back warps in torch.

The template and the rule "least-squares similarity (Umeyama 1991) from the 5
landmarks to the template, scaled to the crop size" are those of insightface's
`estimate_norm`, which FaceDancer and ClipSwap use unchanged
(docs/models.md, section 2). Crops of 112 px feed
identity networks, crops of 256 px the generator.

The warps are `affine_grid`/`grid_sample` (bilinear, zero border), built so that
they reproduce `cv2.warpAffine(image, M, size)` with the same 2x3 matrix M
(frame pixel -> crop pixel), on whatever device the tensors live; or, for the
paper mode, OpenCV 4's own arithmetic (positions in 1/32 px steps).
"""

from __future__ import annotations

from typing import Literal

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

AlignmentName = Literal["arcface", "insightface", "arcface_v1", "ffhq", "mtcnn"]
"""Where a crop's template comes from. arcface: the 112 px template scaled to
the crop (ClipSwap, FaceDancer, ArcFace). insightface: insightface's own
`estimate_norm` rule, which differs for sides that are multiples of 128 and
not of 112: the template is scaled by side / 128 and moved right by
8 x side / 128 px (its 128 px crop puts the 112 template, unscaled, in the
middle), so `norm_crop(image, points, 128)` is matched exactly. arcface_v1,
ffhq, mtcnn: the templates some FaceFusion swappers were trained on
(`FRACTION_TEMPLATES`)."""

FRACTION_TEMPLATES: dict[str, npt.NDArray[np.float64]] = {
    # SimSwap's and GHOST's older ArcFace template (FaceFusion's arcface_112_v1)
    "arcface_v1": np.array(
        [[0.35473214, 0.45658929], [0.64526786, 0.45658929], [0.5, 0.61154464],
         [0.37913393, 0.776875], [0.62086607, 0.776875]]
    ),
    # the FFHQ alignment of GFPGAN and StyleGAN faces (FaceFusion's ffhq_512)
    "ffhq": np.array(
        [[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
         [0.39308822, 0.72541100], [0.61150205, 0.72490465]]
    ),
    # MTCNN-style alignment (FaceFusion's mtcnn_512)
    "mtcnn": np.array(
        [[0.36562865, 0.46733799], [0.63305391, 0.46585885], [0.50019127, 0.61942959],
         [0.39032951, 0.77598822], [0.61178945, 0.77476328]]
    ),
}  # fmt: skip
"""The same 5 points as fractions of the crop side (docs/models.md cites them)."""

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


def insightface_template(size: int) -> npt.NDArray[np.float64]:
    """The template insightface's `estimate_norm(points, size)` fits to: the
    arcface one for multiples of 112, else scaled by size / 128 and shifted
    8 x size / 128 px to the right (128 -> 46.29, 51.70, ...)."""
    if size % 112 == 0:
        return arcface_template(size)
    ratio = size / 128.0
    return ARCFACE_TEMPLATE_112 * ratio + np.array([8.0 * ratio, 0.0])


def alignment_template(size: int, alignment: AlignmentName = "arcface") -> npt.NDArray[np.float64]:
    """The 5 template points of a `size` crop aligned the `alignment` way."""
    if alignment == "insightface":
        return insightface_template(size)
    if alignment == "arcface":
        return arcface_template(size)
    return FRACTION_TEMPLATES[alignment] * size


def alignment_matrices(
    landmarks_5: npt.ArrayLike, size: int, alignment: AlignmentName = "arcface"
) -> Matrix:
    """(N, 2, 3) frame -> crop matrices for (N, 5, 2) landmarks and a `size` crop
    aligned to the `alignment` template."""
    points = np.asarray(landmarks_5, np.float64).reshape(-1, 5, 2)
    template = alignment_template(size, alignment)
    return np.stack([estimate_similarity(face, template) for face in points]).reshape(-1, 2, 3)


def invert_affine(matrices: Matrix) -> Matrix:
    """Exact inverses of (..., 2, 3) affine matrices (crop -> frame)."""
    full = _to_3x3(matrices)
    return np.asarray(np.linalg.inv(full)[..., :2, :], np.float64)


def warp_crops(
    frames: torch.Tensor,
    matrices: Matrix,
    size: int,
    frame_index: torch.Tensor | None = None,
    *,
    origin: tuple[int, int] = (0, 0),
    in_32nds: bool = False,
) -> torch.Tensor:
    """Aligned `size` x `size` crops, like `cv2.warpAffine(frame, M, (size, size))`.

    Args:
        frames: (F, C, H, W) float images: whole frames, or regions of them.
        matrices: (N, 2, 3) frame -> crop matrices.
        size: crop side.
        frame_index: (N,) which frame each crop comes from (default: crop i from frame i).
        origin: the frame pixel (x, y) at the regions' top-left corner.
        in_32nds: sample at OpenCV 4's positions (see `warp_back`).

    Returns:
        (N, C, size, size), zeros outside the frame (or region).
    """
    sources = frames if frame_index is None else frames[frame_index]
    height, width = frames.shape[-2:]
    crop_to_frame = invert_affine(np.asarray(matrices, np.float64).reshape(-1, 2, 3))
    if in_32nds:
        return torch.stack(
            [
                _sample_in_32nds(source, matrix, (size, size), source_origin=origin)
                for source, matrix in zip(sources, crop_to_frame, strict=True)
            ]
        )
    theta = crop_grid_theta(matrices, (height, width), size, origin=origin)
    return sample_crops(sources, torch.as_tensor(theta, device=frames.device), size)


def crop_grid_theta(
    matrices: Matrix, region_size: tuple[int, int], size: int, *, origin: tuple[int, int] = (0, 0)
) -> npt.NDArray[np.float32]:
    """(N, 2, 3) `affine_grid` matrices of `warp_crops` (without `in_32nds`), computed
    on the host: a caller on a GPU uploads them with its other inputs, since a
    small pageable copy of its own would make the host wait for the device."""
    crop_to_frame = invert_affine(np.asarray(matrices, np.float64).reshape(-1, 2, 3))
    crop_to_region = crop_to_frame - np.array([[origin[0]], [origin[1]]]) * [0, 0, 1]
    theta = _grid_theta(crop_to_region, source_size=region_size, target_size=(size, size))
    return theta.astype(np.float32)


def sample_crops(images: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """`size` x `size` crops of (N, C, H, W) `images` (one image may be
    expanded to N) sampled at `crop_grid_theta`'s matrices, already on their device."""
    return _sample(images, theta, (size, size))


def warp_back(
    crops: torch.Tensor,
    matrices: Matrix,
    frame_size: tuple[int, int],
    *,
    origin: tuple[int, int] = (0, 0),
    in_32nds: bool = False,
) -> torch.Tensor:
    """Crops put back into frame space, like `cv2.warpAffine(crop, M^-1, (W, H))`.

    Args:
        crops: (N, C, s, s) float crops (images or masks).
        matrices: (N, 2, 3) the frame -> crop matrices the crops were made with.
        frame_size: (H, W) of the output: the frame, or a region of it.
        origin: the frame pixel (x, y) at the output's top-left corner.
        in_32nds: sample where OpenCV 4 does rather than exactly: at
            positions rounded to 1/32 px by its fixed-point steps, taken in
            frame coordinates (OpenCV 5 keeps them for float64 images only).

    Returns:
        (N, C, H, W), zeros where the crop does not reach.
    """
    size = crops.shape[-2:]
    frame_to_crop = np.asarray(matrices, np.float64).reshape(-1, 2, 3)
    if in_32nds:
        return torch.stack(
            [
                _sample_in_32nds(crop, matrix, frame_size, target_origin=origin)
                for crop, matrix in zip(crops, frame_to_crop, strict=True)
            ]
        )
    region_to_crop = frame_to_crop.copy()
    region_to_crop[..., :, 2] += frame_to_crop[..., :, :2] @ np.array(origin, np.float64)
    theta = _grid_theta(region_to_crop, source_size=(size[0], size[1]), target_size=frame_size)
    theta_tensor = torch.as_tensor(theta, dtype=torch.float32, device=crops.device)
    return _sample(crops, theta_tensor, frame_size)


def _sample_in_32nds(
    image: torch.Tensor,
    target_to_source: Matrix,
    size: tuple[int, int],
    *,
    target_origin: tuple[int, int] = (0, 0),
    source_origin: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Bilinear samples of (C, h, w) `image` at OpenCV warpAffine's positions:
    the matrix in 1/1024 px steps summed per row and column, then rounded to
    1/32 px, whose whole part picks the pixel and fraction the weights. Both
    images may be regions of larger ones, starting at their origins."""
    height, width = size
    m = target_to_source.reshape(-1)
    device = image.device
    columns = torch.arange(width, dtype=torch.float64, device=device) + target_origin[0]
    rows = torch.arange(height, dtype=torch.float64, device=device) + target_origin[1]
    half_step = 16  # half of 1/32 px, in 1/1024 px
    x = torch.round((m[1] * rows + m[2]) * 1024).long()[:, None] + half_step
    y = torch.round((m[4] * rows + m[5]) * 1024).long()[:, None] + half_step
    x = (x + torch.round(m[0] * columns * 1024).long()[None]) >> 5
    y = (y + torch.round(m[3] * columns * 1024).long()[None]) >> 5
    left, top = (x >> 5) - source_origin[0], (y >> 5) - source_origin[1]
    right_weight, lower_weight = (x & 31).float() / 32, (y & 31).float() / 32
    source_height, source_width = image.shape[-2:]
    padded = F.pad(image, (1, 1, 1, 1))  # the zero border, one pixel wide

    def tap(row: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        inside = (row >= -1) & (row <= source_height) & (column >= -1) & (column <= source_width)
        row = (row + 1).clamp(0, source_height + 1)
        column = (column + 1).clamp(0, source_width + 1)
        return padded[:, row, column] * inside

    upper = tap(top, left) * (1 - right_weight) + tap(top, left + 1) * right_weight
    lower = tap(top + 1, left) * (1 - right_weight) + tap(top + 1, left + 1) * right_weight
    return upper * (1 - lower_weight) + lower * lower_weight


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


def _sample(images: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    dtype = images.dtype if images.is_floating_point() else torch.float32
    grid = F.affine_grid(theta, [len(images), images.shape[1], *size], align_corners=False)
    return F.grid_sample(
        images.to(dtype), grid.to(dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _to_3x3(matrices: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    bottom = np.zeros((*matrices.shape[:-2], 1, 3))
    bottom[..., 0, 2] = 1.0
    return np.concatenate([matrices, bottom], axis=-2)


__all__ = [
    "ARCFACE_TEMPLATE_112",
    "AlignmentName",
    "alignment_matrices",
    "alignment_template",
    "arcface_template",
    "crop_grid_theta",
    "estimate_similarity",
    "insightface_template",
    "invert_affine",
    "sample_crops",
    "warp_back",
    "warp_crops",
]
