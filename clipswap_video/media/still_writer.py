"""Encoding one frame as one image file: PNG, TIFF, DPX (FFmpeg's encoders via
PyAV) or OpenEXR (the OpenEXR package), at the input's depth.

An 8-bit input gives 8-bit RGB files; a deeper one 16-bit PNG (rgb48be) or
TIFF (rgb48le), DPX at 10 or 12 bits when the input has that depth (gbrp10le,
gbrp12le) and 16 otherwise (rgb48le). EXR is always half float: the frame's
display-referred picture made linear by the inverse sRGB curve
(media/transfer.py). Colour tags go where the format has them (PNG: the sRGB,
cHRM, gAMA or cICP chunks FFmpeg derives from the frame's tags; EXR: the
chromaticities attribute), and the disclosure tag goes in every file
(media/still_tags.py; EXR: the comments attribute).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from clipswap_video.arrays import FloatRgbImage, Rgb16Image
from clipswap_video.media.deep import deep_array, is_deep_rgb, rgb8, to_float, to_sixteen, widen
from clipswap_video.media.encoder import EncoderPlan
from clipswap_video.media.exr import write_exr
from clipswap_video.media.info import VideoInfo
from clipswap_video.media.still_tags import tag_dpx, tag_png, tag_tiff
from clipswap_video.media.transfer import display_to_linear

_CODECS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx"}
_DEEP = {"png": "rgb48be", "tiff": "rgb48le", "dpx": "rgb48le"}
_DPX_DEPTHS = {10: "gbrp10le", 12: "gbrp12le"}
_TAGGERS: dict[str, Callable[[bytes, str], bytes]] = {
    "png": tag_png,
    "tiff": tag_tiff,
    "dpx": tag_dpx,
}
_RGB_MATRIX, _FULL_RANGE = 0, 2  # FFmpeg's colour codes for RGB pictures


def plan_still(suffix: str, video: VideoInfo) -> EncoderPlan:
    """The encoder and pixel format of an image sequence's files for input `video`."""
    if suffix.lower() == ".exr":
        return EncoderPlan(codec="exr", pix_fmt="half", options={"compression": "zip"})
    codec = _CODECS[suffix.lower()]
    if video.bit_depth <= 8:
        return EncoderPlan(codec=codec, pix_fmt="rgb24")
    if codec == "dpx" and video.bit_depth in _DPX_DEPTHS:
        return EncoderPlan(codec=codec, pix_fmt=_DPX_DEPTHS[video.bit_depth])
    return EncoderPlan(codec=codec, pix_fmt=_DEEP[codec])


class StillWriter:
    """Writes pictures as image files of `plan`'s format, each tagged `disclosure`."""

    def __init__(
        self, plan: EncoderPlan, video: VideoInfo, *, disclosure: str, fps: Fraction | None
    ) -> None:
        self.plan = plan
        self._video = video
        self._disclosure = disclosure
        self._fps = fps

    def write(self, picture: av.VideoFrame, path: Path) -> None:
        """Encodes `picture` (any pixel format) into the file `path`."""
        if self.plan.codec == "exr":
            write_exr(
                path,
                display_to_linear(float_rgb(picture)),
                comments=self._disclosure,
                primaries=self._video.color_primaries,
                frames_per_second=self._fps,
            )
            return
        data = b"".join(bytes(packet) for packet in self._encode(self._converted(picture)))
        path.write_bytes(_TAGGERS[self.plan.codec](data, self._disclosure))

    def _converted(self, picture: av.VideoFrame) -> av.VideoFrame:
        """`picture` in the plan's RGB format, the depth conversions exact (media/deep.py)."""
        if self.plan.pix_fmt == "rgb24":
            converted = av.VideoFrame.from_ndarray(rgb8(picture), format="rgb24")
        else:
            native = "rgb48be" if self.plan.pix_fmt == "rgb48be" else "rgb48le"
            converted = av.VideoFrame.from_ndarray(sixteen_bit(picture), format=native)
            if native != self.plan.pix_fmt:
                converted = converted.reformat(format=self.plan.pix_fmt)  # 10, 12 bits
        converted.color_primaries, converted.color_trc = picture.color_primaries, picture.color_trc
        converted.colorspace, converted.color_range = _RGB_MATRIX, _FULL_RANGE
        return converted

    def _encode(self, picture: av.VideoFrame) -> list[av.Packet]:
        # One encoder per file: each is one intra picture, and a fresh context
        # keeps one file's failure from touching the next.
        encoder = av.CodecContext.create(self.plan.codec, "w")
        assert isinstance(encoder, av.VideoCodecContext)
        encoder.width, encoder.height = picture.width, picture.height
        encoder.pix_fmt = self.plan.pix_fmt
        encoder.time_base = Fraction(1, 1)
        encoder.color_primaries, encoder.color_trc = picture.color_primaries, picture.color_trc
        encoder.colorspace, encoder.color_range = _RGB_MATRIX, _FULL_RANGE
        picture.pts = 0
        return encoder.encode(picture) + encoder.encode(None)


def sixteen_bit(picture: av.VideoFrame) -> Rgb16Image:
    """Any picture as 16-bit RGB (deep RGB exactly; YUV by FFmpeg's conversion,
    which honours its colour matrix and range; 8-bit widened)."""
    if is_deep_rgb(picture):
        return to_sixteen(deep_array(picture))
    if _is_deep(picture):
        return picture.reformat(format="rgb48le").to_ndarray()  # type: ignore[return-value]
    return widen(rgb8(picture), np.dtype(np.uint16))  # type: ignore[return-value]


def float_rgb(picture: av.VideoFrame) -> FloatRgbImage:
    """Any picture as display-referred float RGB (an EXR's own floats unclipped)."""
    if picture.format.name == "rgbf32le":
        return to_float(deep_array(picture))
    return to_float(sixteen_bit(picture) if _is_deep(picture) else rgb8(picture))


def _is_deep(picture: av.VideoFrame) -> bool:
    return max(component.bits for component in picture.format.components) > 8


__all__ = ["StillWriter", "float_rgb", "plan_still", "sixteen_bit"]
