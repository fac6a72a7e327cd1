"""The demo media: real faces, exact ground truth, the promised format."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from clipswap_video.demo import (
    astronaut_actor,
    background,
    demo_path,
    render_frame,
    write_demo_media,
)
from clipswap_video.media import probe, read_image


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return write_demo_media(
        tmp_path_factory.mktemp("demo"), seconds=2, width=320, height=180, fps=15
    )


def test_files_and_format(small_demo) -> None:  # type: ignore[no-untyped-def]
    info = probe(small_demo.video, count_frames=True)
    video = info.video
    assert (video.width, video.height, video.frame_count, video.average_rate) == (320, 180, 30, 15)
    assert (video.codec, video.pix_fmt, video.variable_frame_rate) == ("h264", "yuv420p", False)
    assert [s.kind for s in info.streams] == ["video", "audio"]
    with av.open(str(small_demo.video)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.rate == 48000
        assert abs(float(audio.duration * audio.time_base) - 2.0) < 0.1
    assert read_image(small_demo.source_image).shape[2] == 3
    assert not list(small_demo.video.parent.glob("*.partial*"))


def test_ground_truth_json(small_demo) -> None:  # type: ignore[no-untyped-def]
    truth = json.loads(small_demo.landmarks.read_text())
    assert truth["frame_count"] == len(truth["frames"]) == 30
    for entry in truth["frames"]:
        (face,) = entry["faces"]
        points = np.array(face["landmarks_5"])
        x0, y0, x1, y1 = face["box"]
        assert points.shape == (5, 2)
        assert (points >= 0).all() and (points[:, 0] < 320).all() and (points[:, 1] < 180).all()
        assert x0 < points[:, 0].min() and points[:, 0].max() < x1  # the box holds the face
        assert points[0, 0] < points[1, 0]  # image-left eye first
    centres = np.array([np.mean(f["faces"][0]["landmarks_5"], axis=0) for f in truth["frames"]])
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert steps.max() < 10 and steps.sum() > 30  # smooth, and it really moves


def test_landmarks_follow_the_pixels() -> None:
    """A bright dot painted on the sprite at each landmark lands where the truth says."""
    actor = astronaut_actor(demo_path(640, 360))
    sprite = actor.sprite.copy()
    for x, y in actor.landmarks_5.round().astype(int):
        sprite[y - 1 : y + 2, x - 1 : x + 2, :3] = (0, 255, 0)
    marked = replace(actor, sprite=sprite, landmarks_5=actor.landmarks_5.round())
    plain = np.zeros((360, 640, 3), np.uint8)
    frame, (points,) = render_frame(plain, [marked], t=1.3)
    assert points is not None
    greenness = frame[..., 1].astype(int) - frame[..., 0] - frame[..., 2]
    for x, y in points:
        top, left = int(y) - 5, int(x) - 5
        weight = np.clip(greenness[top : top + 11, left : left + 11], 0, None).astype(float)
        rows, cols = np.mgrid[0:11, 0:11]
        found_x = left + (cols * weight).sum() / weight.sum()
        found_y = top + (rows * weight).sum() / weight.sum()
        assert abs(found_x - x) < 0.5 and abs(found_y - y) < 0.5, (found_x, found_y, x, y)


def test_deterministic_and_off_screen_actor() -> None:
    actor = astronaut_actor(demo_path(320, 180))
    backdrop = background(320, 180)
    first, _ = render_frame(backdrop, [actor], 0.7)
    second, _ = render_frame(backdrop, [actor], 0.7)
    assert np.array_equal(first, second)
    hidden = replace(actor, path=lambda t: None)
    frame, placed = render_frame(backdrop, [hidden], 0.7)
    assert placed == [None] and np.array_equal(frame, backdrop)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"seconds": 0}, r"seconds and fps must be positive \(got 0, 30\)"),
        ({"fps": 0}, r"seconds and fps must be positive \(got 10.0, 0\)"),
        ({"width": 321}, r"must be even for 4:2:0 H.264 \(got 321x720\)"),
        ({"height": 181}, r"must be even for 4:2:0 H.264 \(got 1280x181\)"),
        ({"width": 32, "height": 32}, r"32x32 is too small to hold a face \(at least 64x64\)"),
    ],
)
def test_bad_arguments(tmp_path: Path, arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_demo_media(tmp_path / "d", **arguments)  # type: ignore[arg-type]
    assert not (tmp_path / "d").exists()  # checked before anything is written


def test_demo_media_command(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, err = cli(
        "demo-media", tmp_path / "d", "--seconds", "0.5", "--width", "160", "--height", "96"
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "source.jpg",
        "target.mp4",
        "target_landmarks.json",
    ]
    code, err = cli("demo-media", tmp_path / "e", "--width", "161")
    assert code == 4 and "even" in err
