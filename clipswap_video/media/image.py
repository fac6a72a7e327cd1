"""Reading still images (source faces, references) with one clear error per failure."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clipswap_video.arrays import RgbImage
from clipswap_video.errors import InputNotFoundError, UnreadableInputError

IMAGE_SUFFIXES = frozenset(".bmp .jpeg .jpg .png .tif .tiff .webp".split())
"""File extensions taken for still images where a folder mixes images and videos."""

# What Pillow raises on a damaged or hostile file, besides OSError.
_IMAGE_DATA_ERRORS = (
    UnidentifiedImageError,
    OSError,
    EOFError,
    SyntaxError,
    ValueError,
    ArithmeticError,
    LookupError,
    struct.error,
    Image.DecompressionBombError,
)


def read_image(path: Path, *, what: str = "source image") -> RgbImage:
    """Decodes `path` to RGB uint8, applying its EXIF orientation."""
    if not path.exists():
        raise InputNotFoundError(f"{what} {path} does not exist")
    try:
        with Image.open(path) as image:
            return _to_rgb(ImageOps.exif_transpose(image))
    except _IMAGE_DATA_ERRORS as error:
        raise UnreadableInputError(f"{what} {path} is not a readable image ({error})") from None


def _to_rgb(image: Image.Image) -> RgbImage:
    """RGB uint8. Pillow's own conversion clips 16- and 32-bit grey (a 16-bit
    PNG) at 255, a white page: those are scaled down instead."""
    if image.mode.startswith("I;16") or image.mode == "I":
        wide = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or wide.max() > 255 else 255.0
        grey = np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8)
        return cast(RgbImage, np.repeat(grey[..., None], 3, axis=2))
    return cast(RgbImage, np.asarray(image.convert("RGB")))


__all__ = ["IMAGE_SUFFIXES", "read_image"]
