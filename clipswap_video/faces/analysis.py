"""Per-frame face analysis of a video: detect every k frames and on the first
frame of every shot, refresh the landmarks in between, track, and report faces
in stored-frame pixels.

Videos from phones are often stored sideways with a display rotation; the
detectors only find upright faces, so each frame is turned upright for the
analysis and the results are mapped back to the stored pixels the swap edits.
"""

from __future__ import annotations

import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config import FaceSettings, TrackSettings
from clipswap_video.faces.cuts import SceneCutDetector
from clipswap_video.faces.detect import FaceDetector
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
        self.cuts = SceneCutDetector(track.cut_threshold)
        self.quarter_turns = round(rotation / 90) % 4
        self._frames_since_detection = 0

    def analyse(self, image: RgbImage) -> list[Face]:
        """The tracked faces of the next frame, ids stable, in `image` pixels."""
        upright = np.rot90(image, self.quarter_turns) if self.quarter_turns else image
        upright = np.ascontiguousarray(upright)
        self.tracker.predict()
        if self.cuts.is_cut(upright):
            self.tracker.end_all()
            self._frames_since_detection = 0  # a new shot starts with a full detection
        if self._frames_since_detection % self.detect_every == 0:
            detections = self.detector.detect(upright)
            faces = self.tracker.update(detections, lambda new: self.detector.embed(upright, new))
            self._frames_since_detection = 0
        else:
            visible = self.tracker.visible_faces()
            inside = [face for face in visible if _mostly_inside(face, upright)]
            # A face leaving the frame is not refreshed nor carried on by its prediction.
            gone = {face.track_id for face in visible if not _mostly_inside(face, upright)}
            measured = self.detector.refresh(upright, inside)
            faces = self.tracker.refresh(measured, {i for i in gone if i is not None})
        self._frames_since_detection += 1
        if not self.quarter_turns:
            return faces
        return [unrotate_face(face, self.quarter_turns, upright.shape[:2]) for face in faces]


def unrotate_face(face: Face, quarter_turns: int, upright_size: tuple[int, ...]) -> Face:
    """`face` found in `np.rot90(stored, quarter_turns)` mapped back to stored pixels."""

    def back(points: np.ndarray) -> np.ndarray:
        return unrotate_points(points, quarter_turns, upright_size)

    corners = back(face.box.reshape(2, 2))
    box = np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
    dense = None if face.landmarks_dense is None else back(face.landmarks_dense)
    return face.with_(box=box, landmarks_5=back(face.landmarks_5), landmarks_dense=dense)


def unrotate_points(
    points: np.ndarray, quarter_turns: int, upright_size: tuple[int, ...]
) -> np.ndarray:
    """(K, 2) points in a `np.rot90(stored, quarter_turns)` image -> stored pixels.

    Pixel centres sit at integer coordinates (the OpenCV and dlib convention),
    so a turn maps a stored x to W - 1 - x.
    """
    result = np.asarray(points, np.float32).copy()
    height, width = upright_size[:2]
    for _ in range(quarter_turns % 4):
        # One counter-clockwise turn took stored (x, y) to (y, W_stored - 1 - x),
        # and W_stored is the turned image's height: undo it.
        x, y = result[:, 0].copy(), result[:, 1].copy()
        result[:, 0], result[:, 1] = height - 1 - y, x
        height, width = width, height
    return result


def _mostly_inside(face: Face, image: RgbImage) -> bool:
    """Whether most of the face's box lies in the image: landmarks are not
    refreshed for faces leaving the frame (the next detection settles them)."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = face.box
    inside_w = max(0.0, min(x2, width) - max(x1, 0))
    inside_h = max(0.0, min(y2, height) - max(y1, 0))
    area = max((x2 - x1) * (y2 - y1), 1e-6)
    return inside_w * inside_h / area > 0.6


__all__ = ["FaceAnalyzer", "unrotate_face", "unrotate_points"]
