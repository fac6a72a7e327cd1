"""`--start`/`--end`/`--duration`: a part of a video, cut to the frame, the other
streams cut with it in sync, times from zero; the jobs file's keys; bad times."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import CliRun
from face_fixtures import grace_actor, line_path, write_actor_clip

from clipswap_video.errors import ExitCode
from media_fixtures import CLOSED_GOP, frame_times, rgb_frames, write_clip, write_gop_clip


def _stream_span(path: Path, kind: str) -> tuple[float, float]:
    """Where the first packet of the first `kind` stream starts and the last ends, in s."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        times = [
            (float(p.pts * p.time_base), float((p.pts + (p.duration or 0)) * p.time_base))
            for p in container.demux(stream)
            if p.size and p.pts is not None
        ]
    return times[0][0], times[-1][1]


def _subtitles(path: Path) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as container:
        streams = container.streams.subtitles
        return [(float(p.pts * p.time_base), bytes(p)) for p in container.demux(streams) if p.size]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / error) if error > 0 else float("inf")


def _closest(picture: np.ndarray, video: Path) -> int:
    """The index of the frame of `video` that `picture` is (re-encoded)."""
    return int(np.argmax([_psnr(picture, frame) for frame in rgb_frames(video)]))


def test_a_range_of_a_clip_with_audio_and_subtitles(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(
        tmp_path / "in.mkv", frames=60, fps=30, audio=["aac"], subtitles=True, width=96, height=64
    )
    out = tmp_path / "out.mkv"
    code, err = cli(source_image, clip, out, "--swapper", "none", "--start", "0.5", "--end", "1.5")
    assert code == ExitCode.OK, err
    times = frame_times(out)
    assert len(times) == 30 and times[0] == 0  # frames 15..44, from zero
    assert times[-1] == pytest.approx(29 / 30, abs=0.002)
    assert _closest(rgb_frames(out)[0], clip) == 15  # the first at or after 0.5 s
    video_end = float(times[-1]) + 1 / 30
    audio_start, audio_end = _stream_span(out, "audio")
    frame = 1024 / 48000  # one AAC frame
    assert 0 <= audio_start < frame and video_end <= audio_end < video_end + frame
    # SUBTITLES: (0.2 s, "first line") starts before the range; (0.6 s, ...) is in it.
    assert _subtitles(out) == [(pytest.approx(0.1, abs=0.002), b"second line")]


def test_keep_timestamps_and_duration(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=60, fps=30, audio=["aac"])
    out = tmp_path / "out.mp4"
    code, err = cli(
        source_image, clip, out, "--swapper", "none", "--start", "0:00:01", "--duration", "0.5",
        "--keep-timestamps",
    )  # fmt: skip
    assert code == ExitCode.OK, err
    assert frame_times(out) == frame_times(clip)[30:45]
    assert _stream_span(out, "audio")[0] >= 1.0


def test_a_range_of_a_variable_frame_rate_clip_with_b_frames(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    # 40 frames at 10 fps then 40 at 20 fps, keyframes every 10 frames, B-frames.
    stamps = [index * 100 for index in range(40)] + [4000 + index * 50 for index in range(40)]
    clip = write_gop_clip(tmp_path / "vfr.mkv", CLOSED_GOP, frames=80, pts=stamps)
    out = tmp_path / "out.mkv"
    code, err = cli(source_image, clip, out, "--swapper", "none", "--start", "3.33", "--end", "4.6")
    assert code == ExitCode.OK, err
    kept = [stamp for stamp in stamps if 3330 <= stamp < 4600]  # 3.4 s .. 4.55 s
    assert [round(t * 1000) for t in frame_times(out)] == [stamp - kept[0] for stamp in kept]
    assert _closest(rgb_frames(out)[0], clip) == stamps.index(kept[0])


@pytest.mark.slow
def test_a_swapped_range_starts_with_the_full_runs_frame(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "walk.mp4"
    write_actor_clip(
        clip, [grace_actor(line_path((200, 180), (440, 180), 3.0, 0.5))], seconds=3, fps=10
    )
    full, part = tmp_path / "full.mp4", tmp_path / "part.mp4"
    for out, extra in ((full, []), (part, ["--start", "1.95", "--end", "2.55"])):
        code, err = cli(source_image, clip, out, "--swapper", "classic", "--crf", "0", *extra)
        assert code == ExitCode.OK, err
    ours, theirs = rgb_frames(part), rgb_frames(full)
    assert len(ours) == 6  # 2.0 .. 2.5 s
    # The warm-up (the frames from the clip's only keyframe) gives the tracker
    # the state a full run has; what differs is its landmark noise (docs/batch.md).
    assert all(_psnr(a, b) > 40 for a, b in zip(ours, theirs[20:26], strict=True))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--start", "-1"], "from 0"),
        (["--start", "soon"], "not a time"),
        (["--start", "5"], "not before the video's end"),
        (["--start", "1", "--end", "0.5"], "not after its start"),
        (["--start", "0.21", "--end", "0.22"], "no frame"),
        (["--keep-timestamps"], "goes with --start"),
    ],
)
def test_bad_times_write_nothing(
    cli: CliRun, source_image: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=30, fps=30, width=64, height=48)
    out = tmp_path / "out.mp4"
    code, err = cli(source_image, clip, out, "--swapper", "none", *flags)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != ExitCode.OK and len(errors) == 1 and message in errors[0], err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4"]


def test_jobs_file_ranges(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    write_clip(tmp_path / "in.mp4", frames=60, fps=30, width=64, height=48)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(
        f'[defaults]\nsource = "{source_image}"\nset = ["swap.swapper=none"]\n\n'
        '[[job]]\ninput = "in.mp4"\noutput = "a.mp4"\nstart = 0.5\nduration = "0:00:00.5"\n\n'
        '[[job]]\ninput = "in.mp4"\noutput = "b.mp4"\nend = 1\n'
    )
    code, err = cli("batch", jobs, "--workers", "1")
    assert code == ExitCode.OK, err
    assert frame_times(tmp_path / "a.mp4") == [Fraction(i, 30) for i in range(15)]
    assert len(frame_times(tmp_path / "b.mp4")) == 30
    jobs.write_text(
        f'[[job]]\nsource = "{source_image}"\ninput = "in.mp4"\noutput = "c.mp4"\n'
        "end = 1\nduration = 1\n"
    )
    code, err = cli("batch", jobs)
    assert code == ExitCode.BAD_CONFIG_VALUE and "end or duration" in err


@pytest.mark.parametrize("warmup", ["2", "0"])
def test_a_range_of_an_mpeg_ts_clip(
    cli: CliRun, source_image: Path, tmp_path: Path, warmup: str
) -> None:
    """MPEG-TS has no index: FFmpeg's seek lands on the keyframe after the time
    asked (with no warm-up, after the range's start); the reader sees it and
    seeks further back."""
    clip = write_gop_clip(tmp_path / "in.ts", CLOSED_GOP, frames=60, fps=10)
    out = tmp_path / "out.mp4"
    code, err = cli(
        source_image, clip, out, "--swapper", "none", "--start", "3.35", "--end", "4.6",
        "--set", f"batch.segment_warmup_seconds={warmup}",
    )  # fmt: skip
    assert code == ExitCode.OK, err
    times = frame_times(out)
    assert len(times) == 12 and times[0] == 0  # 3.4 .. 4.5 s
    assert _closest(rgb_frames(out)[0], clip) == 34
