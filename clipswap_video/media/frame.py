"""The unit that travels through the pipeline: a decoded frame plus optional new pixels."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import numpy as np

from clipswap_video.arrays import RgbImage


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
            return cast(RgbImage, self.decoded.to_ndarray(format="rgb24"))
        return self.pixels

    def replace_pixels(self, rgb: RgbImage) -> None:
        """Sets a new picture of the same size."""
        expected = (self.decoded.height, self.decoded.width, 3)
        assert rgb.shape == expected and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
        self.pixels = rgb


__all__ = ["Frame"]
