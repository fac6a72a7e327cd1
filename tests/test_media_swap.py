"""Media properties through the swap path: variable frame rate, rotation, 10-bit
and odd sizes with the classic swapper on clips where faces are found. Each
test checks both that the faces were swapped and that the property survived
(test_media.py checks the same properties with no swap)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from face_fixtures import astronaut_actor, line_path

from clipswap_video.config import load_settings
from clipswap_video.demo import background, render_frame
from clipswap_video.media import MediaInfo, probe
from clipswap_video.pipeline import run_video
from clipswap_video.swap import FaceSwapper, SwapStage
from media_fixtures import frame_times

VFR_MS = [0, 40, 73, 140, 173, 300, 333, 366]  # gaps and bursts
BT709_FULL = {"color_range": 2, "colorspace": 1, "color_primaries": 1, "color_trc": 1}
BT2020 = {"color_range": 1, "colorspace": 9, "color_primaries": 9, "color_trc": 16}

Landmarks = list[np.ndarray]


class _CountingSwapper(FaceSwapper):
    """The classic swapper, keeping the stage of each video to read its face count."""

    stages: list[SwapStage]

    def stage_for(self, info: MediaInfo, measure_quality: bool = False) -> SwapStage:
        stage = super().stage_for(info, measure_quality)
        self.stages.append(stage)
        return stage


@pytest.fixture(scope="module")
def swapper(source_image: Path) -> _CountingSwapper:
    return _CountingSwapper(load_settings(overrides=["swap.swapper=classic"]), [source_image])


def _swap(swapper: _CountingSwapper, source: Path, clip: Path, output: Path) -> int:
    """Swaps `clip` into `output`; returns the number of faces swapped."""
    swapper.stages = []
    run_video(source, clip, output, swapper.settings, swapper=swapper)
    return swapper.stages[0].coverage.faces_swapped


def _face_clip(
    path: Path,
    *,
    size: tuple[int, int] = (320, 240),
    stamps: Sequence[int] = range(8),
    time_base: Fraction = Fraction(1, 30),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    color: dict[str, int] | None = None,
) -> Landmarks:
    """A clip of the astronaut's face (about 90 px, dlib finds it) drifting right,
    written with plain PyAV; with `rotation` stored turned and tagged to display
    upright. Returns each frame's five landmarks in upright pixels."""
    width, height = size
    duration = float(stamps[-1] * time_base) or 1.0
    actor = astronaut_actor(
        line_path((width / 2 - 10, height / 2), (width / 2 + 10, height / 2), duration, 1.0)
    )
    backdrop, turns, truth = _colour_bars(background(width, height)), rotation // 90, []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height = (height, width) if turns % 2 else (width, height)
        stream.pix_fmt = pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        for key, value in (color or {}).items():
            setattr(stream.codec_context, key, value)
        if rotation:
            stream.set_display_rotation(rotation)
        for stamp in stamps:
            image, landmarks = render_frame(backdrop, [actor], float(stamp * time_base))
            truth.append(landmarks[0])
            stored = np.ascontiguousarray(np.rot90(image, -turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame = frame.reformat(
                format=pix_fmt,
                dst_colorspace=(color or {}).get("colorspace"),
                dst_color_range=(color or {}).get("color_range"),
            )
            for key, value in (color or {}).items():
                setattr(frame, key, value)
            frame.pts, frame.time_base = stamp, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return truth


def _colour_bars(backdrop: np.ndarray) -> np.ndarray:
    """Saturated bars down both edges, clear of the face: a wrong colour matrix
    or range in the swap path shifts them by many levels (the soft backdrop
    alone hides it)."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
    height, width = backdrop.shape[:2]
    for index, colour in enumerate(colours):
        rows = slice(index * height // 6, (index + 1) * height // 6)
        backdrop[rows, : width // 8] = backdrop[rows, -width // 8 :] = colour
    return backdrop


def _upright(path: Path, turns: int = 0) -> list[np.ndarray]:
    """Every frame as 8-bit RGB, turned upright."""
    with av.open(str(path)) as container:
        return [
            np.rot90(frame.to_ndarray(format="rgb24"), turns).astype(int)
            for frame in container.decode(video=0)
        ]


def _bar_colours(image: np.ndarray) -> np.ndarray:
    """The mean colour inside each of the twelve bars (their edges left out)."""
    height, width = image.shape[:2]
    means = []
    for index in range(6):
        rows = slice(index * height // 6 + 4, (index + 1) * height // 6 - 4)
        for columns in (slice(4, width // 8 - 4), slice(width - width // 8 + 4, width - 4)):
            means.append(image[rows, columns].reshape(-1, 3).mean(axis=0))
    return np.array(means)


def _assert_faces_swapped(
    clip: Path, output: Path, truth: Landmarks, swapped: int, turns: int = 0
) -> None:
    """Every frame's face swapped (counted, and its pixels changed), the picture
    away from it not, and the colours of the bars kept."""
    before, after = _upright(clip, turns), _upright(output, turns)
    assert swapped == len(truth) == len(before) == len(after)
    assert [frame.shape for frame in after] == [frame.shape for frame in before]
    for landmarks, old, new in zip(truth, before, after, strict=True):
        height, width = old.shape[:2]
        y, x = np.mgrid[0:height, 0:width]
        centre, reach = landmarks.mean(axis=0), np.ptp(landmarks, axis=0).max()
        distance = np.hypot(x - centre[0], y - centre[1])
        change = np.abs(new - old).mean(axis=2)
        assert change[distance < reach].mean() > 8  # the face was replaced
        # Away from the face: encoding loss and the RGB round trip of a changed
        # frame (swscale's 4:2:0 <-> RGB darkens it by about 1.5 levels, measured).
        assert change[distance > 2.5 * reach].mean() < 4
        assert np.abs(_bar_colours(new) - _bar_colours(old)).max() < 5  # 30+ if mis-coded


def test_vfr_swapped_keeps_every_timestamp(
    swapper: _CountingSwapper, source_image: Path, tmp_path: Path
) -> None:
    clip, output = tmp_path / "in.mkv", tmp_path / "out.mkv"
    truth = _face_clip(clip, stamps=VFR_MS, time_base=Fraction(1, 1000))
    swapped = _swap(swapper, source_image, clip, output)
    _assert_faces_swapped(clip, output, truth, swapped)
    assert frame_times(output) == [Fraction(stamp, 1000) for stamp in VFR_MS]
    assert probe(output, count_frames=True).video.variable_frame_rate


def test_rotated_clip_is_swapped_upright_and_keeps_its_rotation(
    swapper: _CountingSwapper, source_image: Path, tmp_path: Path
) -> None:
    clip, output = tmp_path / "in.mp4", tmp_path / "out.mp4"
    truth = _face_clip(clip, rotation=90)  # stored 240 x 320, shown 320 x 240
    swapped = _swap(swapper, source_image, clip, output)
    _assert_faces_swapped(clip, output, truth, swapped, turns=1)
    before, after = probe(clip).video, probe(output).video
    assert after.rotation == before.rotation == 90
    assert after.display_matrix == before.display_matrix
    assert (after.width, after.height) == (before.width, before.height) == (240, 320)


def test_ten_bit_swapped_stays_ten_bit_with_its_colour_tags(
    swapper: _CountingSwapper, source_image: Path, tmp_path: Path
) -> None:
    clip, output = tmp_path / "in.mp4", tmp_path / "out.mp4"
    truth = _face_clip(clip, pix_fmt="yuv420p10le", color=BT2020)
    swapped = _swap(swapper, source_image, clip, output)
    _assert_faces_swapped(clip, output, truth, swapped)
    video = probe(output).video
    assert (video.pix_fmt, video.bit_depth) == ("yuv420p10le", 10)
    assert {key: getattr(video, key) for key in BT2020} == BT2020


def test_odd_size_swapped_keeps_its_exact_size(
    swapper: _CountingSwapper, source_image: Path, tmp_path: Path
) -> None:
    clip, output = tmp_path / "in.mkv", tmp_path / "out.mp4"
    truth = _face_clip(clip, size=(641, 361), codec="ffv1", stamps=range(6), color=BT709_FULL)
    swapped = _swap(swapper, source_image, clip, output)
    _assert_faces_swapped(clip, output, truth, swapped)
    video = probe(output, count_frames=True).video
    assert (video.width, video.height, video.frame_count) == (641, 361, 6)
    assert video.pix_fmt == "yuvj444p"  # 4:2:0 cannot code an odd size in H.264; full range
    assert {key: getattr(video, key) for key in BT709_FULL} == BT709_FULL
