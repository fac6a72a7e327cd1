"""Per-frame face analysis of a video: detect every k frames, refresh the
landmarks in between, track, and report faces in stored-frame pixels.

Videos from phones are often stored sideways with a display rotation; the
detectors only find upright faces, so each frame is turned upright for the
analysis and the results are mapped back to the stored pixels the swap edits.
"""

from __future__ import annotations

import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config import FaceSettings, TrackSettings
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.faces.rolled import unrotate_face
from clipswap_video.faces.track import FaceTracker
from clipswap_video.faces.types import Face


class FaceAnalyzer:
    """Feeds one video's frames, in order, through detector and tracker.

    Args:
        detector: the backend (models loaded once, shared across videos).
        faces: detection settings (`detect_every`).
        track: tracker settings.
        rotation: the video's display rotation, degrees counter-clockwise.
    """

    def __init__(
        self,
        detector: FaceDetector,
        faces: FaceSettings,
        track: TrackSettings,
        rotation: int = 0,
    ) -> None:
        self.detector = detector
        self.detect_every = faces.detect_every
        self.tracker = FaceTracker(track, detector.match_distance, faces.detect_every)
        self.quarter_turns = round(rotation / 90) % 4
        self._frames_seen = 0

    def analyse(self, image: RgbImage) -> list[Face]:
        """The tracked faces of the next frame, ids stable, in `image` pixels."""
        upright = np.rot90(image, self.quarter_turns) if self.quarter_turns else image
        upright = np.ascontiguousarray(upright)
        self.tracker.predict()
        if self._frames_seen % self.detect_every == 0:
            detections = self.detector.detect(upright)
            faces = self.tracker.update(detections, lambda new: self.detector.embed(upright, new))
        else:
            inside = [f for f in self.tracker.visible_faces() if _mostly_inside(f, upright)]
            faces = self.tracker.refresh(self.detector.refresh(upright, inside))
        self._frames_seen += 1
        if not self.quarter_turns:
            return faces
        return [unrotate_face(face, self.quarter_turns, upright.shape[:2]) for face in faces]


def _mostly_inside(face: Face, image: RgbImage) -> bool:
    """Whether most of the face's box lies in the image: landmarks are not
    refreshed for faces leaving the frame (the next detection settles them)."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = face.box
    inside_w = max(0.0, min(x2, width) - max(x1, 0))
    inside_h = max(0.0, min(y2, height) - max(y1, 0))
    area = max((x2 - x1) * (y2 - y1), 1e-6)
    return inside_w * inside_h / area > 0.6


__all__ = ["FaceAnalyzer"]
