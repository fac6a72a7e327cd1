"""OpenEXR files in and out, with the OpenEXR package (the Academy Software
Foundation's own bindings): scene-linear RGB as float32 arrays.

Reading takes the R, G and B channels of the first part (half, float or uint,
any compression OpenEXR reads) and places the data window in the display
window, the picture a compositor shows: pixels outside the data window are 0,
data outside the display window (overscan) is cut. Writing stores half floats
with ZIP compression (lossless, the usual choice for plates and renders) and
the attributes a pipeline reads: chromaticities, framesPerSecond, comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR

from clipswap_video.arrays import FloatRgbImage

CHROMATICITIES = {
    1: (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),  # BT.709 / sRGB
    9: (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290),  # BT.2020
    12: (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290),  # Display P3 (D65)
}
"""The `chromaticities` attribute (red, green, blue, white x/y) of FFmpeg's
colour-primaries codes; untagged pictures are taken as BT.709."""

EXR_ERRORS = (RuntimeError, ValueError, TypeError, OSError)
"""What the OpenEXR package raises on a missing, damaged or unusual file."""


@dataclass(frozen=True)
class ExrPicture:
    """The RGB of one EXR file and the header facts a sequence needs."""

    linear: FloatRgbImage
    frames_per_second: Fraction | None  # the framesPerSecond attribute, if any
    has_alpha: bool
    pixel_aspect_ratio: float


def read_exr(path: Path) -> ExrPicture:
    """Reads `path`'s RGB as float32.

    Raises:
        ValueError: the file has no R, G and B channels, or subsampled ones.
        RuntimeError, OSError: OpenEXR cannot read the file (EXR_ERRORS).
    """
    with OpenEXR.File(str(path), separate_channels=True) as image:
        # Copies: the file's own header and channels are emptied when it closes.
        header = dict(image.header())
        channels = dict(image.channels())
        missing = [name for name in "RGB" if name not in channels]
        if missing:
            found = ", ".join(sorted(channels)) or "none"
            raise ValueError(f"it has no {'/'.join(missing)} channel (channels: {found})")
        planes = [np.asarray(channels[name].pixels, np.float32) for name in "RGB"]
        has_alpha = "A" in channels
    if len({plane.shape for plane in planes}) != 1:
        raise ValueError("its R, G and B channels are subsampled differently")
    return ExrPicture(
        linear=_in_display_window(np.stack(planes, axis=-1), header),
        frames_per_second=_rate(header.get("framesPerSecond")),
        has_alpha=has_alpha,
        pixel_aspect_ratio=float(header.get("pixelAspectRatio", 1.0)),
    )


def write_exr(
    path: Path,
    linear: FloatRgbImage,
    *,
    comments: str,
    primaries: int,
    frames_per_second: Fraction | None,
) -> None:
    """Writes `linear` as half-float RGB, ZIP-compressed, to `path`."""
    header: dict[str, Any] = {
        "compression": OpenEXR.ZIP_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        "comments": comments,
        "chromaticities": CHROMATICITIES.get(primaries, CHROMATICITIES[1]),
    }
    if frames_per_second is not None:
        header["framesPerSecond"] = frames_per_second
    # Half floats hold +-65504: what lies beyond is clipped, not turned into infinity.
    half = np.clip(linear, -65504.0, 65504.0).astype(np.float16)
    with OpenEXR.File(header, {name: half[..., i].copy() for i, name in enumerate("RGB")}) as out:
        out.write(str(path))


def _in_display_window(data: FloatRgbImage, header: dict[str, Any]) -> FloatRgbImage:
    """The data window's pixels placed in the display window."""
    (data_x0, data_y0), (data_x1, data_y1) = (map(int, corner) for corner in header["dataWindow"])
    window = header.get("displayWindow", header["dataWindow"])
    (x0, y0), (x1, y1) = (map(int, corner) for corner in window)
    if (data_x0, data_y0, data_x1, data_y1) == (x0, y0, x1, y1):
        return data
    picture = np.zeros((y1 - y0 + 1, x1 - x0 + 1, 3), np.float32)
    top, bottom = max(data_y0, y0), min(data_y1, y1)  # the windows' overlap, inclusive
    left, right = max(data_x0, x0), min(data_x1, x1)
    if top <= bottom and left <= right:
        picture[top - y0 : bottom - y0 + 1, left - x0 : right - x0 + 1] = data[
            top - data_y0 : bottom - data_y0 + 1, left - data_x0 : right - data_x0 + 1
        ]
    return picture


def _rate(value: Any) -> Fraction | None:
    """The framesPerSecond attribute (the package gives a Fraction) when usable."""
    if isinstance(value, Fraction) and value > 0:
        return value
    return None


__all__ = ["CHROMATICITIES", "EXR_ERRORS", "ExrPicture", "read_exr", "write_exr"]
