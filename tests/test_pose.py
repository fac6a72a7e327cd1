"""Yaw from 5 landmarks: exact on a mean face turned and rolled in 3D, near 0
on the frontal photos the detectors see, and the swap leaves a face turned past
faces.max_yaw alone (counted as chosen, not swapped)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import CliRun
from PIL import Image
from skimage.data import astronaut

from clipswap_video.cli import main
from clipswap_video.demo import write_demo_media
from clipswap_video.faces.pose import EYE_HALF_WIDTH, NOSE_DEPTH, estimate_yaw, facing
from clipswap_video.faces.types import Face

# A mean face in mm (x right, y down, z towards the camera), eyes on z = 0.
FACE_3D = np.array(
    [
        [-EYE_HALF_WIDTH, 0.0, 0.0],  # the image's left eye
        [EYE_HALF_WIDTH, 0.0, 0.0],
        [0.0, 35.0, NOSE_DEPTH],  # nose tip
        [-25.0, 70.0, 8.0],  # mouth corners
        [25.0, 70.0, 8.0],
    ]
)


def seen(yaw: float, roll: float, scale: float = 2.0) -> np.ndarray:
    """FACE_3D turned by `yaw` about a vertical axis 90 mm behind the eyes, then
    rolled in the picture by `roll` (degrees), projected orthographically."""
    t = math.radians(yaw)
    turn = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    points = (FACE_3D + [0, 0, 90]) @ turn.T - [0, 0, 90]
    r = math.radians(roll)
    spin = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    return points[:, :2] @ spin.T * scale + [320, 180]


@pytest.mark.parametrize("roll", [-60.0, -20.0, 0.0, 35.0, 80.0])
@pytest.mark.parametrize("yaw", [-80.0, -60.0, -30.0, -5.0, 0.0, 10.0, 45.0, 70.0, 85.0])
def test_yaw_is_recovered_whatever_the_roll(yaw: float, roll: float) -> None:
    assert estimate_yaw(seen(yaw, roll)) == pytest.approx(yaw, abs=0.5)


def test_a_face_seen_edge_on_counts_as_profile() -> None:
    assert estimate_yaw(np.array([[5, 5], [5, 5], [9, 9], [4, 12], [6, 12]])) == 90.0


def _saved(image: np.ndarray) -> Path:
    path = Path("astronaut.png")  # the tests run in their own working folder
    Image.fromarray(image).save(path)
    return path


def test_only_faces_within_max_yaw_are_kept() -> None:
    faces = [
        Face(np.zeros(4, np.float32), 1.0, seen(yaw, 0).astype(np.float32)) for yaw in (5, 50, 80)
    ]
    assert facing(faces, 60) == faces[:2]
    assert facing(faces, 90) == faces  # 90: every face, profiles too
    assert facing(faces, 0) == []


def test_frontal_photos_read_as_frontal(
    cli: CliRun, source_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Grace Hopper's portrait and the astronaut look at the camera: the faces
    command reports their yaw near 0."""
    for photo in (source_image, _saved(astronaut())):
        assert main(["faces", str(photo), "--json"]) == 0
        [face] = json.loads(capsys.readouterr().out)["frames"][0]["faces"]
        assert abs(face["yaw"]) < 15 and face["selected"]


@pytest.mark.slow
def test_a_face_turned_past_max_yaw_is_left_alone(
    cli: CliRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole path: chosen, not swapped, counted, and the output is the input."""
    media = write_demo_media(tmp_path, seconds=1, width=640, height=360, fps=30)
    output = tmp_path / "out.mp4"
    code, err = cli(media.source_image, media.video, output, "--set", "faces.max_yaw=0")
    assert code == 0
    assert "30 frames, faces swapped in 0 (30 with a face not swapped)" in err
    assert "all were turned further than faces.max_yaw = 0 degrees" in err
