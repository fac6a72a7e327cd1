"""How far a face is turned (yaw) and rolled in the picture, from its 5 landmarks alone.

The swappers are trained on faces seen from the front to about three-quarter
view; past that they paste a distorted face, so a face turned further than
`faces.max_yaw` is left as it is (and counted as a chosen face not swapped).

The estimate: undo the roll (the eyes' line made level), then compare the
nose tip's sideways offset from the eyes' midpoint with half the eye distance.
For a head turned by yaw θ, with the eyes at ±EYE_HALF_WIDTH across and the
nose tip NOSE_DEPTH in front of them (a mean face, in the same units), that
ratio is NOSE_DEPTH·sin θ / (EYE_HALF_WIDTH·cos θ), so θ = atan(ratio ·
EYE_HALF_WIDTH / NOSE_DEPTH). Sign: positive when the nose points to the
image's right.

The roll alone (the eyes' line against the horizontal) tells the refresh of
the RetinaFace backends how far to turn their window to see the face upright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from clipswap_video.faces.types import Face, Landmarks

EYE_HALF_WIDTH = 32.0
"""Half the distance between the pupils of an adult face, mm."""
NOSE_DEPTH = 30.0
"""How far the nose tip stands in front of the eyes, mm."""


def estimate_roll(landmarks_5: Landmarks) -> float:
    """Roll in degrees: the angle of the line from the image's left eye to its
    right eye (0 = level, positive = turned clockwise in the image, whose y
    points down)."""
    points = np.asarray(landmarks_5, np.float64)
    across = points[1] - points[0]
    return math.degrees(math.atan2(across[1], across[0]))


def estimate_yaw(landmarks_5: Landmarks) -> float:
    """Yaw in degrees (0 = facing the camera, ±90 = profile) from eyes, nose,
    mouth corners as detectors give them (the image's left eye first)."""
    points = np.asarray(landmarks_5, np.float64)
    left_eye, right_eye, nose = points[0], points[1], points[2]
    across = right_eye - left_eye
    half_width = float(np.hypot(*across)) / 2
    if half_width < 1e-6:
        return 90.0  # both eyes at one point: seen edge-on
    roll = math.radians(estimate_roll(landmarks_5))
    offset = nose - (left_eye + right_eye) / 2
    sideways = offset[0] * math.cos(roll) + offset[1] * math.sin(roll)
    return math.degrees(math.atan(sideways / half_width * EYE_HALF_WIDTH / NOSE_DEPTH))


def facing(faces: Sequence[Face], max_yaw: float) -> list[Face]:
    """The faces turned by at most `max_yaw` degrees (90: all of them)."""
    if max_yaw >= 90:
        return list(faces)
    return [face for face in faces if abs(estimate_yaw(face.landmarks_5)) <= max_yaw]


__all__ = ["EYE_HALF_WIDTH", "NOSE_DEPTH", "estimate_roll", "estimate_yaw", "facing"]
