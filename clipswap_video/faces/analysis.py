"""Per-frame face analysis of a video: detect every k frames and on the first
frame of every shot, refresh the landmarks in between, track, and report faces
in stored-frame pixels.

Videos from phones are often stored sideways with a display rotation; the
detectors only find upright faces, so each frame is turned upright for the
analysis and the results are mapped back to the stored pixels the swap edits.

A head can also roll within the picture (faces/rolled.py). The quarter-turn
passes that find it cost two more full detections, so they run only where a
rolled face is likely to be missed: on the first full detection of every shot,
and on a full detection that does not find a face a track still follows.
"""

from __future__ import annotations

import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config_sections import FaceSettings, TrackSettings
from clipswap_video.faces.cuts import SceneCutDetector
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.faces.rolled import detect_rolled, unrotate_face
from clipswap_video.faces.track import SAME_FACE_IOU, FaceTracker
from clipswap_video.faces.types import Face, box_iou


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
        self.refine = faces.refine
        self.tracker = FaceTracker(track, detector.match_distance)
        self.cuts = SceneCutDetector(track.cut_threshold)
        self.iou_threshold = track.iou_threshold
        self.quarter_turns = round(rotation / 90) % 4
        self._frames_since_detection = 0
        self._shot_start = True

    def analyse(self, image: RgbImage) -> list[Face]:
        """The tracked faces of the next frame, ids stable, in `image` pixels."""
        upright = np.rot90(image, self.quarter_turns) if self.quarter_turns else image
        upright = np.ascontiguousarray(upright)
        self.tracker.predict()
        if self.cuts.is_cut(upright):
            self.tracker.end_all()
            self._frames_since_detection = 0  # a new shot starts with a full detection
            self._shot_start = True
        if self._frames_since_detection % self.detect_every == 0:
            faces = self._detect(upright)
            self._frames_since_detection = 0
        else:
            visible = self.tracker.visible_faces()
            inside = [face for face in visible if _mostly_inside(face, upright)]
            # A face leaving the frame is not refreshed nor carried on by its prediction.
            gone = {face.track_id for face in visible if not _mostly_inside(face, upright)}
            faces = self.tracker.refresh(self.detector.refresh(upright, inside), gone)
        self._frames_since_detection += 1
        if not self.quarter_turns:
            return faces
        return [unrotate_face(face, self.quarter_turns, upright.shape[:2]) for face in faces]

    def _detect(self, image: RgbImage) -> list[Face]:
        """A full detection, with the quarter-turn passes where they are due."""
        detections = self.detector.detect(image)
        if self.refine and (self._shot_start or self._lost_a_face(detections)):
            detections = detect_rolled(self.detector.detect, image, detections)
        self._shot_start = False
        if self.refine:
            detections = self._remeasured(image, detections)
        return self.tracker.update(detections, lambda new: self.detector.embed(image, new))

    def _remeasured(self, image: RgbImage, detections: list[Face]) -> list[Face]:
        """`detections` measured again the way the frames in between are (the
        refresh window's scale, turned upright when rolled), so the landmarks do
        not jump every `detect_every` frames; a face the window misses stays as
        detected, and so does one the window took for a neighbour's (a face half
        behind another)."""
        numbered = [face.with_(track_id=index) for index, face in enumerate(detections)]
        again = {face.track_id: face for face in self.detector.refresh(image, numbered)}
        return [
            again[index].with_(track_id=None)
            if index in again and box_iou(again[index].box, face.box)[0, 0] >= SAME_FACE_IOU
            else face
            for index, face in enumerate(detections)
        ]

    def _lost_a_face(self, detections: list[Face]) -> bool:
        """Whether a seen or coasting track overlaps none of `detections`."""
        # The tracks' predicted boxes, read only: the tracker decides the matches.
        expected = [t.face.box for t in self.tracker.tracks if t.state != "lost"]
        if not expected:
            return False
        if not detections:
            return True
        overlap = box_iou(np.stack(expected), np.stack([face.box for face in detections]))
        return bool((overlap.max(axis=1) < self.iou_threshold).any())


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
