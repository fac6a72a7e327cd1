"""Decoding one image of a sequence into a video frame.

PNG, TIFF and DPX are decoded by FFmpeg's own decoders through PyAV, the file
handed to the decoder as one packet: no demuxer probes it, and a '%' in a
folder's name is never taken for an image2 pattern. The decoder keeps the
file's depth (16-bit PNG as rgb48be, 16-bit TIFF as rgb48le, 10-bit DPX as
gbrp10le) and its colour chunks as frame tags. OpenEXR files are read by the
OpenEXR package (media/exr.py) and turned display-referred by the extended
sRGB curve (media/transfer.py) into an `rgbf32le` frame tagged BT.709 / sRGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from clipswap_video.media.exr import EXR_ERRORS, read_exr
from clipswap_video.media.transfer import linear_to_display

DECODERS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx"}
"""FFmpeg's decoder of each image format but EXR."""

_BT709 = 1  # FFmpeg's colour codes: primaries, transfer (IEC 61966-2-1), matrix, range
_SRGB_TRANSFER = 13
_RGB_MATRIX = 0
_FULL_RANGE = 2


@dataclass(frozen=True)
class Still:
    """One decoded image, with what its file says beyond the pixels."""

    picture: av.VideoFrame
    codec: str  # png, tiff, dpx, exr
    has_alpha: bool  # the alpha channel is not kept
    frames_per_second: Fraction | None  # an EXR's framesPerSecond attribute
    sample_aspect_ratio: Fraction | None


class StillError(ValueError):
    """An image that cannot be decoded; the message says why, in a few words."""


def read_still(path: Path) -> Still:
    """Decodes the image file `path`.

    Raises:
        StillError: the file is missing, unreadable, truncated or not an image of its kind.
    """
    if path.suffix.lower() == ".exr":
        return _read_exr(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StillError(error.strerror or str(error)) from None
    decoder = av.CodecContext.create(DECODERS[path.suffix.lower()], "r")
    assert isinstance(decoder, av.VideoCodecContext)
    try:
        pictures = decoder.decode(av.Packet(data)) + decoder.decode(None)
    except (av.FFmpegError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise StillError(f"it is truncated or not a {decoder.name} image ({reason})") from None
    if not pictures:
        raise StillError(f"the {decoder.name} decoder made no picture of it")
    picture = pictures[0]
    assert isinstance(picture, av.VideoFrame)
    aspect = decoder.sample_aspect_ratio
    return Still(
        picture,
        decoder.name,
        has_alpha=any(component.is_alpha for component in picture.format.components),
        frames_per_second=None,
        sample_aspect_ratio=aspect if aspect and aspect != 1 else None,
    )


def _read_exr(path: Path) -> Still:
    try:
        image = read_exr(path)
    except EXR_ERRORS as error:
        raise StillError(_exr_reason(error)) from None
    picture = av.VideoFrame.from_ndarray(linear_to_display(image.linear), format="rgbf32le")
    picture.color_primaries, picture.color_trc = _BT709, _SRGB_TRANSFER
    picture.colorspace, picture.color_range = _RGB_MATRIX, _FULL_RANGE
    ratio = Fraction(image.pixel_aspect_ratio).limit_denominator(1000)
    return Still(
        picture,
        "exr",
        has_alpha=image.has_alpha,
        frames_per_second=image.frames_per_second,
        sample_aspect_ratio=ratio if ratio not in (0, 1) else None,
    )


def _exr_reason(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, RuntimeError):  # the header: not an EXR, or a damaged one
        return f"OpenEXR cannot open it ({text})"
    if "part index" in text:  # the package's words when the pixels cannot be decoded
        return "OpenEXR cannot decode its pixels: it is truncated or corrupt"
    return text


__all__ = ["DECODERS", "Still", "StillError", "read_still"]
