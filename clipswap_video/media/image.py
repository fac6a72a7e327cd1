"""Reading still images (source faces, references) with one clear error per failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clipswap_video.arrays import RgbImage
from clipswap_video.errors import InputNotFoundError, UnreadableInputError

IMAGE_SUFFIXES = frozenset(".bmp .jpeg .jpg .png .tif .tiff .webp".split())
"""File extensions taken for still images where a folder mixes images and videos."""


def read_image(path: Path, *, what: str = "source image") -> RgbImage:
    """Decodes `path` to RGB uint8, applying its EXIF orientation."""
    if not path.exists():
        raise InputNotFoundError(f"{what} {path} does not exist")
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image)
            return np.asarray(upright.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableInputError(f"{what} {path} is not a readable image ({error})") from None


__all__ = ["IMAGE_SUFFIXES", "read_image"]
