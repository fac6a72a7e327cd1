"""Face tracks: stable ids across frames and Kalman-smoothed landmarks.

Detections join tracks by box overlap (IoU, Hungarian assignment), then by
identity embedding, so a face hidden for a while gets its old id back.
Each track's 5 landmarks and box corners are smoothed by a constant-velocity
Kalman filter (faces/kalman.py), with noise levels proportional to the face size so
one setting fits small and large faces.

A track is in one of three states. `seen`: measured at the last detection or
refresh. `coasting`: the detector lost the face (blur, a passing hand) less
than `track.max_gap` frames ago; the prediction stands in for it, so the swap
stays in place instead of flickering back to the original face. `lost`: a
longer gap, a scene cut, or the face left the frame; it is not reported, and
is remembered only so the same person coming back (by identity) keeps the id.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.linalg import block_diag
from scipy.optimize import linear_sum_assignment

from clipswap_video.config_sections import TrackSettings
from clipswap_video.faces.kalman import KalmanFilter, white_noise_acceleration
from clipswap_video.faces.pose import estimate_yaw
from clipswap_video.faces.types import Embedding, Face, box_iou, embedding_distance

Embedder = Callable[[list[Face]], list[Face]]
"""Adds embeddings to faces of the current frame (the backend's `embed` on that frame)."""

_COORDINATES = 14  # 5 landmarks and 2 box corners, x and y
# Both noise matrices are linear in their variance: built once for variance 1,
# scaled per update by (fraction * face size)^2.
_UNIT_Q = block_diag(*[white_noise_acceleration(dt=1.0)] * _COORDINATES)
_UNIT_R = np.eye(_COORDINATES)


def _measurement(face: Face) -> np.ndarray:
    return np.concatenate([face.landmarks_5.reshape(-1), face.box]).astype(np.float64)


class LandmarkFilter:
    """Constant-velocity Kalman filter over a face's 14 coordinates.

    The state is (position, velocity) per coordinate; the noise levels are
    fractions of the face size, re-scaled at every step as the face grows or
    shrinks.
    """

    def __init__(self, face: Face, settings: TrackSettings) -> None:
        self.settings = settings
        self.kalman = KalmanFilter(dim_x=2 * _COORDINATES, dim_z=_COORDINATES)
        self.kalman.F = block_diag(*[np.array([[1.0, 1.0], [0.0, 1.0]])] * _COORDINATES)
        self.kalman.H = np.zeros((_COORDINATES, 2 * _COORDINATES))
        self.kalman.H[np.arange(_COORDINATES), 2 * np.arange(_COORDINATES)] = 1.0
        self.kalman.x[0::2, 0] = _measurement(face)
        size = max(face.size, 1.0)
        position_var = (settings.measurement_noise * size) ** 2
        velocity_var = (0.05 * size) ** 2  # a new face may already be moving
        self.kalman.P = np.diag([position_var, velocity_var] * _COORDINATES)
        self._set_noise(size)

    def predict(self) -> None:
        self.kalman.predict()

    def update(self, face: Face) -> None:
        self._set_noise(max(face.size, 1.0))
        self.kalman.update(_measurement(face))

    def apply(self, face: Face) -> Face:
        """`face` with its landmarks and box replaced by the filter's estimate."""
        state = self.kalman.x[0::2, 0].astype(np.float32)
        return face.with_(landmarks_5=state[:10].reshape(5, 2), box=state[10:])

    def _set_noise(self, size: float) -> None:
        self.kalman.Q = _UNIT_Q * (self.settings.process_noise * size) ** 2
        self.kalman.R = _UNIT_R * (self.settings.measurement_noise * size) ** 2


TrackState = Literal["seen", "coasting", "lost"]

COAST_MAX_YAW = 45.0
"""A face last seen turned further (degrees) is not carried on by its prediction."""
HIDDEN_COVER = 0.3
"""Share of a new face's box under a seen face's box that makes it half hidden."""
SAME_FACE_IOU = 0.5
"""Refreshed boxes of two tracks overlapping this much are one face: one track keeps it."""


@dataclass
class Track:
    """One face over time."""

    track_id: int
    face: Face
    """The latest estimate (smoothed when smoothing is on)."""
    filter: LandmarkFilter | None
    hits: int = 1
    """Full detections that matched this track."""
    measured: int = 1
    """Detections and refreshes that matched this track."""
    misses: int = 0
    """Frames since the last detection or refresh that matched this track."""
    embedding: Embedding | None = None
    state: TrackState = "seen"


class FaceTracker:
    """Turns per-frame detections into tracks with stable ids.

    Call `update` on frames with a full detection and `refresh` on frames in
    between with the re-measured faces of the visible tracks.
    """

    def __init__(self, settings: TrackSettings, match_distance: float) -> None:
        self.settings = settings
        self.match_distance = match_distance
        self.tracks: list[Track] = []
        self._next_id = 0

    def predict(self) -> None:
        """Advances every track by one frame; call once per frame, first."""
        for track in self.tracks:
            track.misses += 1
            if track.filter is not None:
                track.filter.predict()
                track.face = track.filter.apply(track.face)
            if track.state == "coasting" and track.misses > self.settings.max_gap:
                track.state = "lost"

    def visible_faces(self) -> list[Face]:
        """Predicted faces of the seen and coasting tracks, for a refresh."""
        return [track.face for track in self.tracks if track.state != "lost"]

    def update(self, detections: Sequence[Face], embed: Embedder) -> list[Face]:
        """Associates a full detection; returns the reported faces of this frame."""
        unmatched = self._match_by_overlap(list(detections))
        if unmatched:
            unmatched = embed(unmatched)
            unmatched = self._match_by_identity(unmatched)
        for face in unmatched:
            if not self._may_be_reappearing(face):
                self._start(face)
        self._miss_unmeasured()
        self.tracks = [t for t in self.tracks if t.misses <= self.settings.max_misses]
        return self.faces()

    def refresh(self, measured: Sequence[Face], gone: Collection[int | None] = ()) -> list[Face]:
        """Feeds re-measured faces (track ids set) of a frame without full detection.

        A track left out of `measured` coasts on its prediction for up to
        `track.max_gap` frames; the tracks in `gone` (ids: faces that left the
        frame) are lost at once. When two tracks re-found the same face, the
        one predicted nearer keeps it: the face in front at a crossing.
        """
        by_id = {face.track_id: face for face in _one_track_per_face(measured, self.tracks)}
        for track in self.tracks:
            if track.track_id in by_id:
                self._measure(track, by_id[track.track_id], detected=False)
            elif track.track_id in gone:
                track.state = "lost"
        self._miss_unmeasured()
        return self.faces()

    def end_all(self) -> None:
        """A scene cut: no track continues by position; identity can still bring ids back."""
        for track in self.tracks:
            track.state = "lost"

    def faces(self) -> list[Face]:
        """Faces of the confirmed seen and coasting tracks in this frame, by track id."""
        confirmed = [
            t for t in self.tracks if t.state != "lost" and t.hits >= self.settings.min_hits
        ]
        return [t.face for t in sorted(confirmed, key=lambda t: t.track_id)]

    def _may_be_reappearing(self, face: Face) -> bool:
        """Whether `face` is coming out from behind a seen face while a lost track
        waits for its person: its descriptor, half hidden, cannot tell yet, so the
        next detection decides rather than a new id now."""
        if not any(t.state == "lost" and t.embedding is not None for t in self.tracks):
            return False
        seen = [t.face.box for t in self.tracks if t.state == "seen"]
        return bool(seen) and max(_covered(face.box, box) for box in seen) >= HIDDEN_COVER

    def _miss_unmeasured(self) -> None:
        """Tracks not measured in this frame coast, or are lost without a gap to bridge.

        A track measured only once may be a one-frame false face, and a face last
        seen turning away has most likely turned out of the detector's reach: neither
        coasts.
        """
        for track in self.tracks:
            if track.state == "seen" and track.misses > 0:
                bridge = (
                    self.settings.max_gap > 0
                    and track.measured > 1
                    and abs(estimate_yaw(track.face.landmarks_5)) <= COAST_MAX_YAW
                )
                track.state = "coasting" if bridge else "lost"

    def _match_by_overlap(self, detections: list[Face]) -> list[Face]:
        # Boxes of seen and coasting tracks are still near the face; lost ones
        # have drifted or belong to another shot and are left to the identity match.
        candidates = [t for t in self.tracks if t.state != "lost"]
        if not candidates or not detections:
            return detections
        overlap = box_iou(
            np.stack([t.face.box for t in candidates]), np.stack([d.box for d in detections])
        )
        rows, cols = linear_sum_assignment(-overlap)
        matched = set()
        for row, col in zip(rows, cols, strict=True):
            if overlap[row, col] >= self.settings.iou_threshold:
                self._measure(candidates[row], detections[col])
                matched.add(col)
        return [d for i, d in enumerate(detections) if i not in matched]

    def _match_by_identity(self, detections: list[Face]) -> list[Face]:
        waiting = [t for t in self.tracks if t.state == "lost" and t.embedding is not None]
        if not waiting:
            return detections
        distance = np.array(
            [[_distance(t.embedding, d.embedding) for d in detections] for t in waiting]
        )
        rows, cols = linear_sum_assignment(distance)
        matched = set()
        for row, col in zip(rows, cols, strict=True):
            if distance[row, col] < self.match_distance:
                track = waiting[row]
                track.filter = self._new_filter(detections[col])  # it jumped: restart
                self._measure(track, detections[col])
                matched.add(col)
        return [d for i, d in enumerate(detections) if i not in matched]

    def _measure(self, track: Track, face: Face, *, detected: bool = True) -> None:
        if track.filter is not None:
            track.filter.update(face)
            face = track.filter.apply(face)
        embedding = face.embedding if face.embedding is not None else track.embedding
        track.face = face.with_(track_id=track.track_id, embedding=embedding)
        track.embedding = embedding
        track.hits += int(detected)
        track.measured += 1
        track.misses = 0
        track.state = "seen"

    def _start(self, face: Face) -> None:
        track = Track(
            track_id=self._next_id,
            face=face.with_(track_id=self._next_id),
            filter=self._new_filter(face),
            embedding=face.embedding,
        )
        self._next_id += 1
        self.tracks.append(track)

    def _new_filter(self, face: Face) -> LandmarkFilter | None:
        return LandmarkFilter(face, self.settings) if self.settings.smooth else None


def _one_track_per_face(measured: Sequence[Face], tracks: Sequence[Track]) -> list[Face]:
    """`measured` without the faces another track re-found with a better claim.

    Two refreshed boxes that overlap by `SAME_FACE_IOU` are one face; the track
    whose prediction overlaps it most keeps it (the other face is hidden).
    """
    if len(measured) < 2:
        return list(measured)
    predicted = {t.track_id: t.face.box for t in tracks}
    claim = [
        float(box_iou(face.box, predicted[face.track_id])[0, 0])
        if face.track_id in predicted
        else 0.0
        for face in measured
    ]
    same = box_iou(np.stack([f.box for f in measured]), np.stack([f.box for f in measured]))
    return [
        face
        for index, face in enumerate(measured)
        if all(
            claim[index] > claim[other] or (claim[index] == claim[other] and index < other)
            for other in np.flatnonzero(same[index] >= SAME_FACE_IOU)
            if other != index
        )
    ]


def _covered(box: np.ndarray, cover: np.ndarray) -> float:
    """Share of `box`'s area inside `cover`."""
    width, height = np.clip(
        np.minimum(box[2:], cover[2:]) - np.maximum(box[:2], cover[:2]), 0, None
    )
    area = float(np.prod(np.clip(box[2:] - box[:2], 0, None)))
    return float(width * height) / area if area > 0 else 0.0


def _distance(a: Embedding | None, b: Embedding | None) -> float:
    """Embedding distance; faces without an embedding never match (infinitely far)."""
    return np.inf if a is None or b is None else embedding_distance(a, b)


__all__ = ["Embedder", "FaceTracker", "LandmarkFilter", "Track", "TrackState"]
