"""Preview pictures: the side-by-side of a finished swap (source photo | input
frame | output frame), and the checked, atomic image writing every preview uses."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from clipswap_video.errors import OutputPathError, OutputUnwritableError
from clipswap_video.media import VideoReader, read_image

_HEIGHT = 360


def check_preview_path(path: Path) -> None:
    """Raises OutputPathError for a preview path that cannot be written (checked first)."""
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise OutputPathError(f"preview {path} must end in .png or .jpg")
    if not path.parent.is_dir():
        raise OutputPathError(f"cannot write the preview {path}: {path.parent} is not a folder")


def write_image(picture: np.ndarray, path: Path) -> None:
    """Writes an RGB picture to `path` (format from the suffix) via a partial file."""
    check_preview_path(path)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    if not cv2.imwrite(str(partial), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        partial.unlink(missing_ok=True)
        raise OutputUnwritableError(f"cannot write the preview {path}")
    os.replace(partial, path)


def frame_at(video: Path, index: int) -> np.ndarray:
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
    with VideoReader(input_video) as reader:
        middle = (reader.info.video.frame_count or 2) // 2
    pictures = [read_image(source), frame_at(input_video, middle), frame_at(output_video, middle)]
    write_image(np.hstack([_fit_height(picture) for picture in pictures]), png)


def _fit_height(picture: np.ndarray) -> np.ndarray:
    width = max(1, round(picture.shape[1] * _HEIGHT / picture.shape[0]))
    return np.asarray(cv2.resize(picture, (width, _HEIGHT), interpolation=cv2.INTER_AREA))


__all__ = ["check_preview_path", "frame_at", "write_image", "write_side_by_side"]
