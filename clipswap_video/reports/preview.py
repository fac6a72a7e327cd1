"""Preview pictures: the side-by-side of a finished swap (source photo | input
frame | output frame), and the checked, atomic image writing every preview uses."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.atomic import atomic_output
from clipswap_video.errors import OutputPathError, OutputUnwritableError
from clipswap_video.media import VideoReader, probe, read_image

_HEIGHT = 360


def check_preview_path(path: Path) -> None:
    """Raises OutputPathError for a preview path that cannot be written (checked first)."""
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise OutputPathError(f"preview {path} must end in .png or .jpg")
    if not path.parent.is_dir():
        raise OutputPathError(f"cannot write the preview {path}: {path.parent} is not a folder")


def write_image(picture: RgbImage, path: Path) -> None:
    """Writes an RGB picture to `path` (format from the suffix) via a partial file."""
    check_preview_path(path)
    with atomic_output(path) as partial:
        if not cv2.imwrite(str(partial), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise OutputUnwritableError(f"cannot write the preview {path}")


def frame_at(video: Path, index: int) -> RgbImage:
    """The RGB frame `index` of `video` (its last frame if it is shorter)."""
    last = None
    with VideoReader(video) as reader:
        for frame in reader.frames():
            last = frame.rgb()
            if frame.index >= index:
                break
    if last is None:
        raise OutputUnwritableError(f"{video} has no frames to preview")
    return last


def write_side_by_side(source: Path, input_video: Path, output_video: Path, png: Path) -> None:
    """Writes source | input | output at the middle frame, each 360 px high."""
    middle = (probe(input_video).video.frame_count or 2) // 2
    pictures = [read_image(source), frame_at(input_video, middle), frame_at(output_video, middle)]
    write_image(np.hstack([resized(picture, height=_HEIGHT) for picture in pictures]), png)


def resized(picture: RgbImage, *, width: int | None = None, height: int | None = None) -> RgbImage:
    """`picture` scaled to `width` or to `height`, keeping its aspect ratio."""
    scale = width / picture.shape[1] if width else (height or picture.shape[0]) / picture.shape[0]
    size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    return np.asarray(cv2.resize(np.ascontiguousarray(picture), size, interpolation=cv2.INTER_AREA))


__all__ = ["check_preview_path", "frame_at", "resized", "write_image", "write_side_by_side"]
