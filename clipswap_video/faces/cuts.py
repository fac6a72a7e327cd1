"""Scene cuts: where the picture changes at once, so no track carries on.

A cut is a frame whose small grey thumbnail differs from the previous
frame's by more than `track.cut_threshold` levels on average. Thumbnails
average away noise, grain and small motion, and the face of one shot never
overlaps a face of the next by chance; a missed cut would paste the last
shot's face onto the new one for up to `track.max_gap` frames. A false cut
(a flash, a very fast pan) costs little: the tracks end, the same frame is
detected afresh and identity gives the ids back.
"""

from __future__ import annotations

import cv2
import numpy as np

from clipswap_video.arrays import RgbImage

THUMBNAIL_SIZE = (64, 36)
"""Width, height of the compared thumbnails: coarse enough to ignore motion of a few pixels."""


class SceneCutDetector:
    """Tells, frame by frame in order, whether a frame starts a new shot."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, image: RgbImage) -> bool:
        """Whether `image` differs from the previous frame fed here by more than the threshold."""
        if self.threshold <= 0:
            return False
        thumbnail = thumbnail_of(image)
        previous, self._previous = self._previous, thumbnail
        return previous is not None and frame_change(previous, thumbnail) > self.threshold


def thumbnail_of(image: RgbImage) -> np.ndarray:
    """The image's grey thumbnail, float32 levels 0..255."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def frame_change(before: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, in grey levels."""
    return float(np.abs(after - before).mean())


__all__ = ["SceneCutDetector", "frame_change", "thumbnail_of"]
