"""The picture of a review video: the input and the output side by side, each
half labelled, the frame's time burnt in below the seam.

Both halves are scaled by the same OpenCV call (area interpolation), so what
the swap left alone looks the same on both sides. Videos stored sideways
(phones) are turned upright first, as the face analysis turns them, and
non-square pixels are scaled to square ones, so the review plays as the input
looks whatever the player does with tags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.media.frame import Frame
from clipswap_video.media.probe import VideoInfo

MAX_WIDTH = 1280
"""The review's widest picture: two halves of at most 640 px."""

Box = tuple[int, int, int, int]
"""x0, y0, x1, y1 in review pixels, end exclusive."""

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BOX_COLOUR = (24, 24, 24)
_TEXT_COLOUR = (255, 255, 255)
_WIDEST_TIME = "00:00:00.000"  # the timecode box is sized once, for the widest digits


@dataclass(frozen=True)
class ReviewLayout:
    """Where everything goes in one video's review picture (pixels)."""

    half_width: int
    height: int
    quarter_turns: int  # np.rot90 turns that make a stored frame upright

    @property
    def width(self) -> int:
        return 2 * self.half_width

    @property
    def font_scale(self) -> float:
        return max(0.35, self.height / 600)  # about 13 px digits in a 360 px review

    @property
    def thickness(self) -> int:
        return max(1, round(self.font_scale * 1.5))

    @property
    def pad(self) -> int:
        return max(2, round(6 * self.font_scale))

    @property
    def timecode_box(self) -> Box:
        """At the bottom, across the seam: the time is both halves'."""
        width, height = self._box_size(_WIDEST_TIME)
        left, top = self.half_width - width // 2, self.height - self.pad - height
        return (left, top, left + width, top + height)

    @property
    def label_boxes(self) -> tuple[Box, Box]:
        """The boxes of the labels "input" and "output", top left in their halves."""
        boxes = []
        for text, left in (("input", self.pad), ("output", self.half_width + self.pad)):
            width, height = self._box_size(text)
            boxes.append((left, self.pad, left + width, self.pad + height))
        return boxes[0], boxes[1]

    def video(self, video: VideoInfo) -> VideoInfo:
        """`video` as the review's encoder sees it: this size, upright, square pixels."""
        return replace(
            video,
            width=self.width,
            height=self.height,
            rotation=0,
            display_matrix=None,
            sample_aspect_ratio=None,
        )

    def picture(self, frame: Frame) -> RgbImage:
        """Input | output of `frame`, labelled, with its time (HH:MM:SS.mmm)."""
        original = cast(RgbImage, frame.decoded.to_ndarray(format="rgb24"))
        swapped = original if frame.pixels is None else frame.pixels  # one conversion, not two
        picture = np.hstack([_scaled(original, self), _scaled(swapped, self)])
        for text, box in zip(("input", "output"), self.label_boxes, strict=True):
            _draw(picture, text, box, self)
        _draw(picture, timecode(frame.seconds), self.timecode_box, self)
        return picture

    def _box_size(self, text: str) -> tuple[int, int]:
        (width, height), baseline = cv2.getTextSize(text, _FONT, self.font_scale, self.thickness)
        return width + 2 * self.pad, height + baseline + 2 * self.pad


def plan_layout(video: VideoInfo) -> ReviewLayout:
    """The review's layout for frames of `video`: even sizes (4:2:0 needs them)."""
    turns = round(video.rotation / 90) % 4
    upright = (video.width * float(video.sample_aspect_ratio or 1), video.height)
    width, height = upright[::-1] if turns % 2 else upright
    scale = min(1.0, MAX_WIDTH / 2 / width)  # smaller inputs keep their size
    return ReviewLayout(_even(width * scale), _even(height * scale), turns)


def timecode(seconds: float) -> str:
    """`seconds` as HH:MM:SS.mmm (a leading minus before the start of the clock)."""
    sign = "-" if seconds < 0 else ""
    millis = round(abs(seconds) * 1000)
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def _scaled(picture: RgbImage, layout: ReviewLayout) -> RgbImage:
    upright = np.rot90(picture, layout.quarter_turns) if layout.quarter_turns else picture
    size = (layout.half_width, layout.height)
    return np.asarray(cv2.resize(np.ascontiguousarray(upright), size, interpolation=cv2.INTER_AREA))


def _draw(picture: RgbImage, text: str, box: Box, layout: ReviewLayout) -> None:
    """`text` in white on a dark `box`, a pad in from its left and bottom edges."""
    x0, y0, x1, y1 = box
    cv2.rectangle(picture, (x0, y0), (x1 - 1, y1 - 1), _BOX_COLOUR, thickness=cv2.FILLED)
    _, baseline = cv2.getTextSize(text, _FONT, layout.font_scale, layout.thickness)
    origin = (x0 + layout.pad, y1 - layout.pad - baseline)
    cv2.putText(
        picture, text, origin, _FONT, layout.font_scale, _TEXT_COLOUR, layout.thickness, cv2.LINE_AA
    )


def _even(size: float) -> int:
    return max(2, 2 * round(size / 2))


__all__ = ["MAX_WIDTH", "Box", "ReviewLayout", "plan_layout", "timecode"]
