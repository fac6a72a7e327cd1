"""Deep RGB pictures (float from EXR, 16-bit PNG/TIFF, 10- and 12-bit DPX) and
the 8-bit RGB the stages work in, converted exactly.

FFmpeg's scaler converts between RGB depths with dithering and its own
rounding (16-bit 0xFFFF*k/255 does not always come back as k; float 0.5 can
become 129), so these conversions are done here with numpy: 8-bit k is
k * 257 in 16 bits and k / 255 in float, and back by rounding. Other depths
(10-bit DPX's gbrp10le) go through 16-bit RGB, which FFmpeg converts to and
from them by bit replication and truncation, losslessly.
"""

from __future__ import annotations

from typing import cast

import av
import numpy as np

from clipswap_video.arrays import FloatRgbImage, Rgb16Image, RgbImage

DeepRgbImage = Rgb16Image | FloatRgbImage
"""A deep picture as numpy: uint16 at the full 16-bit scale, or float32 (1.0 white)."""

_NATIVE = ("rgbf32le", "rgb48le", "rgb48be")  # what numpy holds as it is


def is_deep_rgb(picture: av.VideoFrame) -> bool:
    """Whether `picture` is RGB of more than 8 bits per component."""
    fmt = picture.format
    return fmt.is_rgb and max(component.bits for component in fmt.components) > 8


def deep_array(picture: av.VideoFrame) -> DeepRgbImage:
    """A deep RGB picture's pixels: float32 for rgbf32le, else uint16."""
    if picture.format.name in _NATIVE:
        return picture.to_ndarray()  # type: ignore[return-value]
    return picture.reformat(format="rgb48le").to_ndarray()  # type: ignore[return-value]


def rgb8(picture: av.VideoFrame) -> RgbImage:
    """`picture` as 8-bit RGB: rounded here for deep RGB, else FFmpeg's conversion
    (which honours a YUV picture's colour matrix and range)."""
    if not is_deep_rgb(picture):
        return picture.to_ndarray(format="rgb24")  # type: ignore[return-value]
    return narrow(deep_array(picture))


def narrow(deep: DeepRgbImage) -> RgbImage:
    """Deep pixels to 8 bits, rounded (float is clipped to [0, 1] first)."""
    if deep.dtype == np.float32:
        return np.rint(_unit(deep) * 255.0).astype(np.uint8)
    return np.rint(deep / 257.0).astype(np.uint8)


def widen(rgb: RgbImage, dtype: np.dtype[np.generic]) -> DeepRgbImage:
    """8-bit pixels at the depth of `dtype` (float32 or uint16)."""
    if dtype == np.float32:
        return (rgb / np.float32(255.0)).astype(np.float32)
    return rgb.astype(np.uint16) * np.uint16(257)


def to_sixteen(deep: DeepRgbImage) -> Rgb16Image:
    """Deep pixels as uint16 (float is clipped to [0, 1] and rounded)."""
    if deep.dtype == np.float32:
        return np.rint(_unit(deep) * 65535.0).astype(np.uint16)
    return cast(Rgb16Image, deep)


def to_float(deep: DeepRgbImage | RgbImage) -> FloatRgbImage:
    """Pixels as float32 with 1.0 at white (float stays as it is, unclipped)."""
    if deep.dtype == np.float32:
        return cast(FloatRgbImage, deep)
    top = 255.0 if deep.dtype == np.uint8 else 65535.0
    return (deep / np.float32(top)).astype(np.float32)


def _unit(deep: DeepRgbImage) -> FloatRgbImage:
    """Float pixels clipped to [0, 1]."""
    return cast(FloatRgbImage, np.clip(deep, 0.0, 1.0))


def deep_picture(deep: DeepRgbImage, like: av.VideoFrame) -> av.VideoFrame:
    """`deep` as a picture in `like`'s pixel format (one of `deep_array`'s
    sources), with `like`'s colour tags, pts and time base."""
    native = like.format.name if like.format.name in _NATIVE else "rgb48le"
    picture = av.VideoFrame.from_ndarray(
        cast(Rgb16Image, np.ascontiguousarray(deep)), format=native
    )
    if native != like.format.name:
        picture = picture.reformat(format=like.format.name)
    picture.colorspace, picture.color_range = like.colorspace, like.color_range
    picture.color_primaries, picture.color_trc = like.color_primaries, like.color_trc
    picture.pts, picture.time_base = like.pts, like.time_base
    return picture


def from_rgb8(rgb: RgbImage, like: av.VideoFrame) -> av.VideoFrame:
    """8-bit `rgb` (of any size) as a picture in deep RGB `like`'s format."""
    dtype = np.dtype(np.float32 if like.format.name == "rgbf32le" else np.uint16)
    return deep_picture(widen(rgb, dtype), like)


def with_changes(decoded: av.VideoFrame, rgb: RgbImage) -> av.VideoFrame:
    """A deep RGB `decoded` with the pixels that `rgb` changed.

    The stages see and change 8-bit RGB (`rgb8(decoded)`). Converting their
    whole picture back would quantise every pixel to 8 bits: an EXR's
    highlights above 1.0 would be clipped, 16-bit gradients would band. So the
    pixels whose 8-bit value the stages left alone keep their decoded value
    exactly, and only the changed ones (the swapped face and its blend) take
    the new 8-bit value, widened.
    """
    deep = deep_array(decoded).copy()
    changed = np.any(rgb != rgb8(decoded), axis=-1)
    deep[changed] = widen(rgb[changed], deep.dtype)
    return deep_picture(deep, decoded)


__all__ = [
    "DeepRgbImage",
    "deep_array",
    "deep_picture",
    "from_rgb8",
    "is_deep_rgb",
    "narrow",
    "rgb8",
    "to_float",
    "to_sixteen",
    "widen",
    "with_changes",
]
