"""What a supervisor needs to know about a finished video, measured while it is
swapped (no second pass): per second of the video, the frames with a swapped
face, the frames where a chosen face was left unswapped, the face boxes'
flicker (as `evaluate` measures it: the mean frame-to-frame change inside them,
output over input) and the swapped face's identity distance to the source (one
embedding a second, by the detector's own identity model); then the time ranges
where the identity drifts or the flicker jumps, and small pictures of the face
(input and output) at the worst moment: only the worst so far is kept, so a
two-hour video costs no more memory than a short one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from clipswap_video.config_sections import BatchSettings
from clipswap_video.faces import Face
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.faces.types import Embedding, box_region, embedding_distance

_THUMBNAIL_MARGIN = 0.3
_THUMBNAIL_HEIGHT = 112


@dataclass
class _Moment:
    """The worst moment of one kind so far: how bad, when, and the face then."""

    badness: float
    seconds: float
    before: str  # PNG, base64
    after: str

    def as_json(self) -> dict[str, Any]:
        return {"at_s": round(self.seconds, 3), "input": self.before, "output": self.after}

    def as_record(self) -> list[Any]:
        return [self.badness, self.seconds, self.before, self.after]


@dataclass
class _Second:
    frames: int = 0
    swapped: int = 0
    missed: int = 0
    change_in: float = 0.0
    change_out: float = 0.0
    identity: float | None = None


@dataclass
class QualityLog:
    """Per-second quality figures of one video, filled frame by frame."""

    detector: FaceDetector
    source: Embedding
    settings: BatchSettings = field(default_factory=BatchSettings)
    _seconds: dict[int, _Second] = field(default_factory=dict)
    _previous: tuple[np.ndarray, np.ndarray] | None = None
    _worst: dict[str, _Moment] = field(default_factory=dict)  # "identity", "flicker"

    def observe(
        self,
        seconds: float,
        before: np.ndarray,
        after: np.ndarray,
        faces: list[Face],
        selected: int,
    ) -> None:
        """One frame at `seconds`: the decoded image `before`, the output `after`,
        the faces swapped in it and how many were chosen."""
        second = self._seconds.setdefault(max(0, int(seconds)), _Second())
        second.frames += 1
        second.swapped += bool(faces)
        second.missed += len(faces) < selected
        if self._previous is not None:
            for face in faces:
                region = box_region(face.box, before.shape)  # evaluate's flicker region
                old_in, old_out = self._previous
                change_in = _change(before, old_in, region)
                change_out = _change(after, old_out, region)
                second.change_in += change_in
                second.change_out += change_out
                # A grey level of slack: a still input must not make noise the worst.
                self._keep("flicker", change_out / (change_in + 1), seconds, face, before, after)
        self._previous = (before, after)
        if faces and second.identity is None:
            largest = max(faces, key=lambda face: _area(face.box))
            [embedded] = self.detector.embed(after, [largest])
            if embedded.embedding is not None:
                second.identity = embedding_distance(embedded.embedding, self.source)
                self._keep("identity", second.identity, seconds, largest, before, after)

    def _keep(
        self,
        kind: str,
        badness: float,
        seconds: float,
        face: Face,
        before: np.ndarray,
        after: np.ndarray,
    ) -> None:
        worst = self._worst.get(kind)
        if worst is None or badness > worst.badness:
            region = box_region(face.box, before.shape, margin=_THUMBNAIL_MARGIN)
            self._worst[kind] = _Moment(badness, seconds, _png(before[region]), _png(after[region]))

    def record(self) -> dict[str, Any]:
        """The raw sums, as plain data: records of consecutive parts of one video
        (a split job's segments) merge into the video's (`quality_summary`)."""
        limit = self.settings.qc_identity_distance or self.detector.match_distance
        return {
            "seconds": {
                str(index): [s.frames, s.swapped, s.missed, s.change_in, s.change_out, s.identity]
                for index, s in self._seconds.items()
            },
            "worst": {kind: moment.as_record() for kind, moment in self._worst.items()},
            "identity_limit": limit,
        }

    def as_json(self) -> dict[str, Any]:
        return quality_summary([self.record()], self.settings)


def quality_summary(records: list[dict[str, Any]], settings: BatchSettings) -> dict[str, Any]:
    """The series (one entry per second, null where not measured), the flagged
    ranges and the worst moment of one video, from the records of its parts."""
    seconds: dict[int, _Second] = {}
    worst: dict[str, _Moment] = {}
    for record in records:
        for key, sums in record["seconds"].items():
            frames, swapped, missed, change_in, change_out, identity = sums
            second = seconds.setdefault(int(key), _Second())  # a second two segments share
            second.frames += frames
            second.swapped += swapped
            second.missed += missed
            second.change_in += change_in
            second.change_out += change_out
            if second.identity is None:
                second.identity = identity
        for kind, fields in record["worst"].items():
            moment = _Moment(*fields)
            if kind not in worst or moment.badness > worst[kind].badness:
                worst[kind] = moment
    span = [seconds.get(index, _Second()) for index in range(max(seconds, default=-1) + 1)]
    flicker = [round(s.change_out / s.change_in, 3) if s.change_in > 0 else None for s in span]
    identity = [None if s.identity is None else round(s.identity, 4) for s in span]
    limit = records[0]["identity_limit"] if records else 0.0
    flags = _flags(identity, flicker, limit, settings.qc_flicker_jump)
    return {
        "frames": [s.frames for s in span],
        "swapped": [s.swapped for s in span],
        "missed": [s.missed for s in span],
        "flicker": flicker,
        "identity": identity,
        "flags": flags,
        "worst": _worst_moment(worst, flags),
    }


def _worst_moment(worst: dict[str, _Moment], flags: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The face at the worst moment of the kind flagged (identity first, as the
    graver), else at the largest identity distance seen; None before any."""
    reasons = {flag["why"] for flag in flags}
    kind = "flicker" if reasons == {"flicker jump"} else "identity"
    moment = worst.get(kind) or worst.get("flicker")
    return None if moment is None else {"why": kind, **moment.as_json()}


def _flags(
    identity: list[float | None], flicker: list[float | None], limit: float, jump_factor: float
) -> list[dict[str, Any]]:
    """Merged runs of seconds whose identity distance is over `limit`
    (`batch.qc_identity_distance`, 0: the detector's same-person distance) or
    whose flicker is `jump_factor` (`batch.qc_flicker_jump`) times the video's median."""
    measured = [value for value in flicker if value is not None]
    median = float(np.median(measured)) if measured else 0.0
    jump = jump_factor * median
    flags: list[dict[str, Any]] = []
    for second, (distance, ratio) in enumerate(zip(identity, flicker, strict=True)):
        reasons = []
        if distance is not None and distance > limit:
            reasons.append("identity drift")
        if ratio is not None and median > 0 and ratio > jump:
            reasons.append("flicker jump")
        for reason in reasons:
            last = next((flag for flag in reversed(flags) if flag["why"] == reason), None)
            if last is not None and last["end_s"] == second:
                last["end_s"] = second + 1
            else:
                flags.append({"start_s": second, "end_s": second + 1, "why": reason})
    return sorted(flags, key=lambda flag: (flag["start_s"], flag["why"]))


def _png(image: np.ndarray) -> str:
    """`image` (RGB) scaled to the thumbnail height, as base64 PNG."""
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        return ""
    side = (max(1, round(width * _THUMBNAIL_HEIGHT / height)), _THUMBNAIL_HEIGHT)
    small = cv2.resize(image, side, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return base64.b64encode(encoded.tobytes()).decode("ascii") if ok else ""


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _change(image: np.ndarray, previous: np.ndarray, region: tuple[slice, slice]) -> float:
    now, before = image[region].astype(np.int16), previous[region].astype(np.int16)
    return float(np.abs(now - before).mean()) if now.size else 0.0


__all__ = ["QualityLog", "quality_summary"]
