"""The unit that travels through the pipeline: a decoded frame plus optional new pixels."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.media.deep import from_rgb8, is_deep_rgb, rgb8, with_changes


@dataclass(eq=False)  # frames are compared by identity, and can live in sets
class Frame:
    """One decoded video frame.

    `decoded` keeps the decoder's output untouched (pts, time base, colour tags,
    bit depth). A stage that changes the picture stores RGB `pixels`; frames no
    stage touched are encoded straight from `decoded`, with no RGB round trip.
    """

    index: int
    decoded: av.VideoFrame
    pixels: RgbImage | None = None

    @property
    def pts(self) -> int:
        assert self.decoded.pts is not None, "the reader fills in missing pts"
        return self.decoded.pts

    @property
    def time_base(self) -> Fraction:
        assert self.decoded.time_base is not None
        return self.decoded.time_base

    @property
    def seconds(self) -> float:
        return float(self.pts * self.time_base)

    def rgb(self) -> RgbImage:
        """The current picture as RGB (the decoder's colour matrix and range are honoured)."""
        if self.pixels is None:
            return rgb8(self.decoded)
        return self.pixels

    def picture(self) -> av.VideoFrame:
        """The current picture in the decoded pixel format: `decoded` itself when
        no stage changed it; a deep RGB frame keeps the pixels no stage changed
        exactly as decoded (media/deep.py, `with_changes`)."""
        if self.pixels is None:
            return self.decoded
        if is_deep_rgb(self.decoded):
            return with_changes(self.decoded, self.pixels)
        return frame_from_rgb(self.pixels, self.decoded)

    def replace_pixels(self, rgb: RgbImage) -> None:
        """Sets a new picture of the same size."""
        expected = (self.decoded.height, self.decoded.width, 3)
        assert rgb.shape == expected and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
        self.pixels = rgb


def frame_from_rgb(rgb: RgbImage, like: av.VideoFrame) -> av.VideoFrame:
    """`rgb` (of any size) as a picture in `like`'s pixel format, colour tags,
    pts and time base: what an encoder opened for `like` takes as it is."""
    if is_deep_rgb(like):
        return from_rgb8(rgb, like)
    picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=like.format.name,
        dst_colorspace=like.colorspace,
        dst_color_range=like.color_range,
    )
    picture.colorspace, picture.color_range = like.colorspace, like.color_range
    picture.color_primaries, picture.color_trc = like.color_primaries, like.color_trc
    picture.pts, picture.time_base = like.pts, like.time_base
    return picture


__all__ = ["Frame", "frame_from_rgb"]
