"""`clipswap-video preview`: the output at T is the full run's frame at T, a
preview swaps a small fraction of a long video, several times make one row
each, `--debug` draws on the input only, a late-starting stream counts from
its first frame, and every bad input is one line with nothing written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import CliRun
from face_fixtures import astronaut_actor, grace_actor, line_path, write_actor_clip
from test_cli_errors import assert_one_line_error

from clipswap_video.config import load_settings
from clipswap_video.errors import ConfigValueError, ExitCode
from clipswap_video.media import Frame, probe, read_image
from clipswap_video.media.reader import VideoReader
from clipswap_video.media.segments import Span
from clipswap_video.reports.moment import check_times, swap_at
from clipswap_video.reports.preview import resized
from clipswap_video.swap import SwapStage
from media_fixtures import picture, rgb_frames, write_clip

EVERY_10_FRAMES = "keyint=10:min-keyint=10:scenecut=0"  # keyframes
LABEL = 28  # the band above each row
ROW = 360  # each panel's height


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s, 10 fps, 640x360 (panels keep their size), a keyframe every second:
    the astronaut walks to the right, so Grace Hopper's swapped face shows."""
    clip = tmp_path_factory.mktemp("walk") / "walk.mp4"
    path = line_path((160, 180), (480, 180), 4.0, 0.6)
    write_actor_clip(clip, [astronaut_actor(path)], seconds=4, fps=10, x264_params=EVERY_10_FRAMES)
    return clip


def panels(png: Path, source: Path, row: int = 0, video_width: int = 640) -> list[np.ndarray]:
    """Source, input and output panel of one row of a preview (`video_width`:
    the video's panels' width, 360 px high)."""
    picture = read_image(png)
    top = row * (LABEL + ROW) + LABEL
    x0 = resized(read_image(source), height=ROW).shape[1]
    x1 = x0 + video_width
    strip = picture[top : top + ROW]
    return [strip[:, :x0], strip[:, x0:x1], strip[:, x1 : x1 + video_width]]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / error) if error > 0 else float("inf")


def test_the_output_at_t_is_the_full_runs_frame_at_t(
    cli: CliRun, walk: Path, source_image: Path, tmp_path: Path
) -> None:
    code, err = cli(source_image, walk, tmp_path / "full.mp4", "--swapper", "classic", "-q")
    assert code == 0, err
    png = tmp_path / "at3.png"
    code, err = cli(
        "preview", source_image, walk, "--at", "3.0", "--out", png, "--swapper", "classic"
    )
    assert code == 0, err
    assert f"wrote {png}" in err and "0:00:03.000" in err
    photo, before, after = panels(png, source_image)
    assert np.array_equal(photo, resized(read_image(source_image), height=ROW))
    assert np.array_equal(before, rgb_frames(walk)[30])  # 640x360: not scaled
    full = rgb_frames(tmp_path / "full.mp4")[30]
    face = (slice(110, 250), slice(330, 470))  # where the face is at 3 s
    # Measured: 44.1 dB over the frame and 40.0 dB over the face, the full
    # run's crf-18 encode and 4:2:0 chroma alone (a preview from the clip's
    # start measures the same); the input is 29 dB from the output over the face.
    assert psnr(after, full) > 41 and psnr(after[face], full[face]) > 37
    assert psnr(after[face], before[face]) < 33  # the face was swapped


def test_a_preview_swaps_a_small_fraction_of_a_long_video(
    cli: CliRun, source_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = tmp_path / "long.mp4"
    path = line_path((100, 90), (220, 90), 60.0, 0.45)
    write_actor_clip(  # a keyframe every 2 s
        clip, [grace_actor(path)], seconds=60, fps=5, size=(320, 180), x264_params=EVERY_10_FRAMES
    )
    swapped: list[float] = []
    push = SwapStage.push

    def spy(stage: SwapStage, frame: Frame) -> list[Frame]:
        swapped.append(frame.seconds)
        return push(stage, frame)

    monkeypatch.setattr(SwapStage, "push", spy)
    png = tmp_path / "at45.png"
    code, err = cli(
        "preview", source_image, clip, "--at", "45", "--out", png, "--swapper", "classic"
    )
    assert code == 0, err
    # 2 s of warm-up to the frame at 45 s (decoded from the keyframe at 42 s).
    assert swapped == pytest.approx([43 + index / 5 for index in range(11)])
    assert len(swapped) < 0.1 * 300


def test_several_times_make_one_row_each(cli: CliRun, walk: Path, source_image: Path) -> None:
    code, err = cli(
        "preview", source_image, walk, "--at", "0.5", "--at", "0:00:02.25", "--at", "3",
        "--swapper", "none",
    )  # fmt: skip
    assert code == 0, err
    png = Path("walk.preview.png")  # the default: IN_STEM.preview.png here
    width = resized(read_image(source_image), height=ROW).shape[1] + 2 * 640
    assert read_image(png).shape == (3 * (LABEL + ROW), width, 3)
    frames = rgb_frames(walk)
    # 2.25 s lies between two frames: the one on screen then is the one at 2.2 s.
    for row, index in enumerate([5, 22, 30]):
        _, before, after = panels(png, source_image, row)
        assert np.array_equal(before, frames[index]) and np.array_equal(after, before), row


def test_debug_draws_on_the_input_panel_only(
    cli: CliRun, walk: Path, source_image: Path, tmp_path: Path
) -> None:
    pictures = []
    for flags in ((), ("--debug",)):
        png = tmp_path / f"debug{len(flags)}.png"
        code, err = cli(
            "preview", source_image, walk, "--at", "0.3", "--out", png, "--swapper", "classic",
            *flags,
        )  # fmt: skip
        assert code == 0, err
        pictures.append(panels(png, source_image))
    (photo, before, after), (debug_photo, debug_before, debug_after) = pictures
    assert np.array_equal(photo, debug_photo) and np.array_equal(after, debug_after)
    drawn = np.any(before != debug_before, axis=2)
    assert 500 < drawn.sum() < 0.1 * drawn.size  # a box, its label and 5 points
    green = (debug_before[..., 1] > 200) & (debug_before[..., 0] < 80)
    assert green[drawn].sum() > 300  # the box of a face that is swapped


def test_times_count_from_the_first_frame(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    # MPEG-TS, as broadcast files do, starts its clock late: here at 1 s.
    clip = write_clip(tmp_path / "late.ts", frames=30, fps=10, pts=list(range(10, 40)))
    assert probe(clip).video.first_pts == 90_000
    frames = rgb_frames(clip)
    for at, index in (("0.5", 5), ("2.95", 29)):
        png = tmp_path / f"late{at}.png"
        code, err = cli(
            "preview", source_image, clip, "--at", at, "--out", png, "--swapper", "none"
        )
        assert code == 0, err
        _, before, after = panels(png, source_image, video_width=600)  # 160x96 scaled
        assert np.array_equal(before, resized(frames[index], height=ROW)), at
        assert np.array_equal(after, before), at  # --swapper none: nothing swapped
    code, err = cli("preview", source_image, clip, "--at", "3.0", "--out", tmp_path / "no.png")
    assert_one_line_error(code, err, ExitCode.BAD_CONFIG_VALUE, "0:00:03.000 (3.000 s) long")
    assert not (tmp_path / "no.png").exists()


def test_decoding_starts_at_or_before_the_time_asked_in_mpeg_ts(tmp_path: Path) -> None:
    # FFmpeg's seek in MPEG-TS (no index) lands on the keyframe after the time.
    clip = tmp_path / "gop.ts"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "x264-params": EVERY_10_FRAMES}
        for index in range(60):
            frame = av.VideoFrame.from_ndarray(picture(index, 64, 48), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    start = probe(clip).video.first_pts
    assert start is not None
    for seconds in (0.5, 2.0, 3.7, 5.5):
        wanted = start + round(seconds * 90_000)
        with VideoReader(clip, span=Span(None, None, wanted, None)) as reader:
            first = next(reader.frames())
            # the keyframe at or before, or at most one more second back
            assert wanted - 180_000 < first.pts <= wanted, seconds


def test_a_length_the_container_does_not_give_is_found_at_the_last_frame(walk: Path) -> None:
    info = probe(walk)
    unsaid = replace(info, video=replace(info.video, duration_s=None))
    check_times(unsaid, [4.05])
    settings = load_settings(None, ["swap.swapper=none"])
    assert swap_at(unsaid, 3.99, settings, None).frame_s == pytest.approx(3.9)  # on screen
    with pytest.raises(ConfigValueError, match=r"past the end .* 0:00:04\.000 \(4\.000 s\) long"):
        swap_at(unsaid, 4.05, settings, None)


@pytest.mark.parametrize(
    ("flags", "expected", "words"),
    [
        (("--at", "4"), ExitCode.BAD_CONFIG_VALUE, "past the end of"),
        (("--at", "1:00:00"), ExitCode.BAD_CONFIG_VALUE, "0:00:04.000 (4.000 s) long"),
        (("--at", "-1"), ExitCode.BAD_CONFIG_VALUE, "a time is a number of seconds from 0"),
        (("--at", "soon"), ExitCode.BAD_CONFIG_VALUE, "is not a time"),
        (("--at", "1", "--out", "p.gif"), ExitCode.BAD_OUTPUT_PATH, "must end in .png or .jpg"),
        (("--at", "1", "--out", "no/p.png"), ExitCode.BAD_OUTPUT_PATH, "is not a folder"),
        (("--at", "1", "--debug"), ExitCode.BAD_CONFIG_VALUE, "with --swapper none"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: CliRun,
    walk: Path,
    source_image: Path,
    flags: tuple[str, ...],
    expected: ExitCode,
    words: str,
) -> None:
    code, err = cli("preview", source_image, walk, "--swapper", "none", *flags)
    assert_one_line_error(code, err, expected, words)
    assert list(Path.cwd().iterdir()) == []
    assert sorted(path.name for path in walk.parent.iterdir()) == ["walk.mp4"]
