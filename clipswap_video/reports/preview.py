"""Preview pictures: the side-by-side of a finished swap (source photo | input
frame | output frame), rows of them under labels (a contact sheet), and the
checked, atomic image writing every preview uses."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.atomic import atomic_output
from clipswap_video.errors import OutputPathError, OutputUnwritableError
from clipswap_video.media import probe, read_image
from clipswap_video.media.factory import open_reader

_HEIGHT = 360
_LABEL_HEIGHT = 28  # the black band above a row that holds its label


def check_preview_path(path: Path) -> None:
    """Raises OutputPathError for a preview path that cannot be written (checked first)."""
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise OutputPathError(f"preview {path} must end in .png or .jpg")
    if not path.parent.is_dir():
        raise OutputPathError(f"cannot write the preview {path}: {path.parent} is not a folder")
    if path.is_dir():
        raise OutputPathError(f"preview {path} is a folder; give a file name such as out.png")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputUnwritableError(f"cannot write the preview {path}: {path.parent} is read-only")


def write_image(picture: RgbImage, path: Path) -> None:
    """Writes an RGB picture to `path` (format from the suffix) via a partial file."""
    check_preview_path(path)
    with atomic_output(path) as partial:
        if not cv2.imwrite(str(partial), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise OutputUnwritableError(f"cannot write the preview {path}")


def frame_at(video: Path, index: int) -> RgbImage:
    """The RGB frame `index` of `video` (its last frame if it is shorter)."""
    last = None
    with open_reader(video, quiet=True) as reader:  # the job has said what it found
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
    write_image(side_by_side(pictures), png)


def side_by_side(pictures: Sequence[RgbImage]) -> RgbImage:
    """The pictures in one row, each scaled to 360 px high."""
    return np.hstack([resized(picture, height=_HEIGHT) for picture in pictures])


def labelled_rows(rows: Sequence[tuple[str, RgbImage]]) -> RgbImage:
    """(label, row) pictures one above the other, each under a black band that
    holds its label; narrower rows are padded with black on the right."""
    width = max(row.shape[1] for _, row in rows)
    return np.vstack([_under_label(label, row, width) for label, row in rows])


def _under_label(label: str, row: RgbImage, width: int) -> RgbImage:
    canvas = np.zeros((_LABEL_HEIGHT + row.shape[0], width, 3), np.uint8)
    canvas[_LABEL_HEIGHT:, : row.shape[1]] = row
    baseline = (8, _LABEL_HEIGHT - 9)
    white = (255, 255, 255)
    cv2.putText(canvas, label, baseline, cv2.FONT_HERSHEY_SIMPLEX, 0.6, white, 1, cv2.LINE_AA)
    return canvas


def resized(picture: RgbImage, *, width: int | None = None, height: int | None = None) -> RgbImage:
    """`picture` scaled to `width` or to `height`, keeping its aspect ratio."""
    scale = width / picture.shape[1] if width else (height or picture.shape[0]) / picture.shape[0]
    size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    return np.asarray(cv2.resize(np.ascontiguousarray(picture), size, interpolation=cv2.INTER_AREA))


__all__ = [
    "check_preview_path",
    "frame_at",
    "labelled_rows",
    "resized",
    "side_by_side",
    "write_image",
    "write_side_by_side",
]
