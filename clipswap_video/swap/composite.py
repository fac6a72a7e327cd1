"""Compositing shared by every swap backend: a soft face mask from landmarks,
LAB colour transfer, Laplacian-pyramid (multi-band, Burt & Adelson 1983)
blending in the aligned crop, per-track temporal smoothing, and the paste back
into the frame.

Everything except the paste happens in the 256 px aligned crop, where a face
has the same size and pose in every frame: masks and colour statistics of
consecutive frames are comparable there, so smoothing them over time is a
plain running average.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
import torch

from clipswap_video.config_sections import CompositeSettings
from clipswap_video.faces import invert_affine, warp_back

FloatImage = npt.NDArray[np.float32]
PixelRect = tuple[int, int, int, int]
"""(x0, y0, x1, y1): whole pixels of a frame, x1 and y1 exclusive (frame[y0:y1, x0:x1])."""
MOUTH_INNER = slice(60, 68)  # dlib 68-point layout: inner lip contour
_PYRAMID_LEVELS = 5


def face_mask(landmarks_68: np.ndarray, size: int, settings: CompositeSettings) -> FloatImage:
    """Soft mask (size x size, 0..1): the landmark hull eroded and feathered. The
    crop's border is an edge of the face region too: a hull reaching past it
    (a chin below the crop) fades out inside the crop instead of ending in a seam."""
    mask: np.ndarray = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(landmarks_68).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return _feathered(mask, settings)


def box_mask(size: int, settings: CompositeSettings) -> FloatImage:
    """The whole crop, faded out at its border as `face_mask` fades."""
    return _feathered(np.full((size, size), 255, np.uint8), settings)


def _feathered(mask: np.ndarray, settings: CompositeSettings) -> FloatImage:
    reach = settings.mask_feather  # the feather's blur reaches about this far
    if reach:
        mask[:reach], mask[-reach:], mask[:, :reach], mask[:, -reach:] = 0, 0, 0, 0
    if settings.mask_erode:
        kernel = np.ones((2 * settings.mask_erode + 1,) * 2, np.uint8)
        mask = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    soft: FloatImage = mask.astype(np.float32) / 255.0
    if settings.mask_feather:
        soft = cast(FloatImage, cv2.GaussianBlur(soft, (0, 0), settings.mask_feather / 2.0))
    return np.clip(soft, 0.0, 1.0)  # the blur's rounding can step just over 1


def mouth_interior(landmarks_68: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: inside the inner lip contour (teeth, tongue). A closed
    mouth's contour encloses a sliver a pixel or two thin, which is dropped."""
    mouth: np.ndarray = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mouth, [np.round(landmarks_68[MOUTH_INNER]).astype(np.int32)], 1)
    opened = cv2.morphologyEx(mouth, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return np.asarray(opened, bool)


def soft_inside(keep: np.ndarray, feather: float) -> FloatImage:
    """A bool mask made soft only inside itself: exactly 0 outside it, however thin
    the outside (a finger, a microphone: they keep the frame), rising smoothly to 1
    over `feather` pixels of distance inside."""
    if feather <= 0:
        return keep.astype(np.float32)
    distance = cv2.distanceTransform(keep.astype(np.uint8), cv2.DIST_L2, 5)
    ramp = np.clip(distance / feather, 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)  # smoothstep: no kink at 1


def composites_on_device(settings: CompositeSettings) -> bool:
    """The paper's own composite (its fixed mask, a plain alpha blend, no colour
    transfer, no kept mouth) is simple enough to run on the device inside the swap
    engine; every other setting composites on the CPU with the per-track state."""
    return (
        settings.masks == ("paper",)
        and settings.blend == "alpha"
        and not settings.colour_transfer
        and not settings.keep_mouth
    )


def paper_mask(size: int = 256) -> FloatImage:
    """ClipSwap's / FaceDancer's blend mask: ones on rows 77-239 and columns
    32-223 of the 256 crop, blurred by scipy's gaussian_filter(sigma=7) (reflect,
    truncate 4), scaled to `size` (reference 2.3)."""
    from scipy.ndimage import gaussian_filter

    mask = np.zeros((256, 256), np.float64)
    mask[77:240, 32:224] = 1.0
    soft = gaussian_filter(mask, sigma=7).astype(np.float32)
    if size == 256:
        return soft
    return cast(FloatImage, cv2.resize(soft, (size, size), interpolation=cv2.INTER_LINEAR))


@dataclass
class ColourStats:
    """Mean and std of each LAB channel inside a mask."""

    mean: np.ndarray
    std: np.ndarray

    def blend(self, previous: ColourStats | None, weight: float) -> ColourStats:
        if previous is None or weight <= 0:
            return self
        return ColourStats(
            weight * previous.mean + (1 - weight) * self.mean,
            weight * previous.std + (1 - weight) * self.std,
        )


def lab_stats(image: np.ndarray, mask: FloatImage) -> ColourStats:
    """Colour statistics of `image` (uint8 RGB) where `mask` > 0.5."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = lab[mask > 0.5]
    if len(inside) < 16:  # a face too small or masked out: no change
        inside = lab.reshape(-1, 3)
    return ColourStats(inside.mean(0), inside.std(0) + 1e-3)


def transfer_colour(image: np.ndarray, source: ColourStats, target: ColourStats) -> np.ndarray:
    """`image` (uint8 RGB) with LAB statistics moved from `source` to `target`
    (Reinhard et al. 2001, per channel mean and std)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab = (lab - source.mean) / source.std * target.std + target.mean
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def multiband_blend(front: np.ndarray, back: np.ndarray, mask: FloatImage) -> np.ndarray:
    """`front` over `back` (uint8 RGB, same size) by Laplacian pyramids: low
    frequencies blend over a wide band, fine detail over a narrow one, so the
    seam disappears without blurring the face."""
    front_pyr = _laplacian(front.astype(np.float32))
    back_pyr = _laplacian(back.astype(np.float32))
    masks: list[np.ndarray] = [mask]
    for _ in range(_PYRAMID_LEVELS - 1):
        masks.append(cv2.pyrDown(masks[-1]))
    blended = [
        m[..., None] * f + (1 - m[..., None]) * b
        for f, b, m in zip(front_pyr, back_pyr, masks, strict=True)
    ]
    image = blended[-1]
    for level in reversed(blended[:-1]):
        image = cv2.pyrUp(image, dstsize=level.shape[1::-1]) + level
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _laplacian(image: FloatImage) -> list[np.ndarray]:
    levels: list[np.ndarray] = []
    current: np.ndarray = image
    for _ in range(_PYRAMID_LEVELS - 1):
        smaller = cv2.pyrDown(current)
        levels.append(current - cv2.pyrUp(smaller, dstsize=current.shape[1::-1]))
        current = smaller
    return [*levels, current]


def paste(frame: np.ndarray, crop: np.ndarray, mask: FloatImage, matrix: np.ndarray) -> None:
    """Alpha-composites an aligned `crop` (uint8 RGB) back into `frame` in place.

    Only the frame region the crop covers is warped (torch grid_sample, the
    same warp as the crops were cut with), so a small face costs little in a
    large frame.
    """
    rect = crop_footprint(matrix, crop.shape[0], frame.shape[:2])
    if rect is None:
        return
    x0, y0, x1, y1 = rect
    # Premultiplied by the mask, so bilinear sampling at the mask's edge stays exact.
    layers = np.dstack([crop.astype(np.float32) * mask[..., None], mask[..., None]])
    layers, matrix = _shrunk(layers, matrix)
    tensor = torch.from_numpy(layers).permute(2, 0, 1)[None]
    warped = warp_back(tensor, matrix[None], (y1 - y0, x1 - x0), origin=(x0, y0))
    region = warped[0].permute(1, 2, 0).numpy()
    alpha = region[..., 3:]
    target = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region[..., :3] + (1 - alpha) * target + 0.5, 0, 255)


def _shrunk(layers: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A crop larger than its face in the frame, averaged down to about the
    frame's scale first: a bilinear warp that shrinks more than 2:1 skips pixels,
    and which ones it skips changes as the face moves by a fraction of a pixel (a
    shimmer on large crops: pixel boost, enhancers, small faces)."""
    ratio = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # crop pixels per frame pixel
    if ratio <= 2:
        return layers, matrix
    size = layers.shape[0]
    side = max(2, round(size / ratio))
    small = cv2.resize(layers, (side, side), interpolation=cv2.INTER_AREA)
    # A crop pixel centre c sits at (c + 0.5) * side / size - 0.5 in the smaller one.
    scale = side / size
    smaller = np.hstack([matrix[:, :2] * scale, (matrix[:, 2:] + 0.5) * scale - 0.5])
    return small.reshape(side, side, -1), smaller


def crop_footprint(matrix: np.ndarray, size: int, frame_size: tuple[int, ...]) -> PixelRect | None:
    """The frame rectangle of the pixels a `size` crop made with
    `matrix` reaches when warped back, or None when off-frame."""
    # Bilinear sampling with a zero border gives weight to crop coordinates in
    # (-1, size): one crop pixel beyond each edge, which is several frame pixels
    # when a face is larger in the frame than in the crop.
    reach = [-1, size]
    corners = np.array([[x, y, 1] for x in reach for y in reach], np.float64)
    in_frame = corners @ invert_affine(matrix).T
    height, width = frame_size[:2]
    x0, y0 = np.maximum(np.floor(in_frame.min(0)).astype(int), 0)
    x1 = min(int(np.floor(in_frame[:, 0].max())) + 1, width)
    y1 = min(int(np.floor(in_frame[:, 1].max())) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), x1, y1


__all__ = [
    "ColourStats",
    "PixelRect",
    "box_mask",
    "composites_on_device",
    "crop_footprint",
    "face_mask",
    "lab_stats",
    "mouth_interior",
    "multiband_blend",
    "paper_mask",
    "paste",
    "soft_inside",
    "transfer_colour",
]
