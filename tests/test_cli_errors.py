"""Every bad input: one clear line, a distinct exit code, no output file."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipswap_video.errors import ExitCode
from clipswap_video.media import probe
from media_fixtures import write_clip

CliRun = object  # the `cli` fixture of conftest.py


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "in.mp4", frames=30, audio=["aac"])


def outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("out"))


def assert_one_line_error(code: int, err: str, expected: ExitCode, words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected, err
    assert lines[-1].startswith("error: ") and words in lines[-1], err
    assert "Traceback" not in err


def test_ok_run_prints_summary(cli, source_image: Path, clip: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, err = cli(source_image, clip, tmp_path / "out.mp4")
    assert code == 0, err
    assert "wrote" in err and "30 frames" in err
    assert outputs(tmp_path) == ["out.mp4"]


@pytest.mark.parametrize(
    ("make_args", "expected", "words"),
    [
        (
            lambda d, s, c: (d / "nope.jpg", c, d / "out.mp4"),
            ExitCode.INPUT_MISSING,
            "does not exist",
        ),
        (
            lambda d, s, c: (s, d / "nope.mp4", d / "out.mp4"),
            ExitCode.INPUT_MISSING,
            "does not exist",
        ),
        (
            lambda d, s, c: (_junk(d / "bad.jpg"), c, d / "out.mp4"),
            ExitCode.INPUT_UNREADABLE,
            "not a readable image",
        ),
        (
            lambda d, s, c: (s, _junk(d / "bad.mp4"), d / "out.mp4"),
            ExitCode.INPUT_UNREADABLE,
            "not a media file",
        ),
        (lambda d, s, c: (s, d, d / "out.mp4"), ExitCode.INPUT_UNREADABLE, "is a folder"),
        (lambda d, s, c: (s, c, c), ExitCode.BAD_OUTPUT_PATH, "is the input file"),
        (lambda d, s, c: (s, c, d / "out"), ExitCode.BAD_OUTPUT_PATH, "needs a file extension"),
        (lambda d, s, c: (s, c, d / "out.xyzzy"), ExitCode.BAD_OUTPUT_PATH, "extension"),
        (
            lambda d, s, c: (s, c, d / "missing" / "out.mp4"),
            ExitCode.OUTPUT_UNWRITABLE,
            "does not exist",
        ),
        (lambda d, s, c: (s, c, c / "out.mp4"), ExitCode.OUTPUT_UNWRITABLE, "does not exist"),
        (lambda d, s, c: (s, c, Path("/proc/out.mp4")), ExitCode.OUTPUT_UNWRITABLE, "/proc"),
    ],
)
def test_bad_paths(
    cli, source_image: Path, clip: Path, tmp_path: Path, make_args, expected, words
) -> None:  # type: ignore[no-untyped-def]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = cli(*make_args(tmp_path, source_image, clip))
    assert_one_line_error(code, err, expected, words)
    assert outputs(tmp_path) == [o for o in before if o.startswith("out")]


def _junk(path: Path) -> Path:
    path.write_bytes(b"this is not a picture or a video\n" * 20)
    return path


def test_no_video_stream(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import av
    import numpy as np

    audio_only = tmp_path / "in.m4a"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    code, err = cli(source_image, audio_only, tmp_path / "out.mp4")
    assert_one_line_error(code, err, ExitCode.NO_VIDEO_STREAM, "has no video stream")
    assert outputs(tmp_path) == []


def test_config_errors(cli, source_image: Path, clip: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--set", "video.crff=3")
    assert_one_line_error(code, err, ExitCode.UNKNOWN_CONFIG_KEY, "did you mean video.crf")
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--crf", "99")
    assert_one_line_error(code, err, ExitCode.BAD_CONFIG_VALUE, "out of range")
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--preset", "warp-speed")
    assert_one_line_error(code, err, ExitCode.BAD_CONFIG_VALUE, "rejected its settings")
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--codec", "h265_magic")
    assert_one_line_error(code, err, ExitCode.ENCODER_UNAVAILABLE, "not in this FFmpeg build")
    (tmp_path / "c.toml").write_text("[video]\ncrf = 'x'\n")
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--config", tmp_path / "c.toml")
    assert_one_line_error(code, err, ExitCode.BAD_CONFIG_VALUE, "not a valid int")
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--config", tmp_path / "no.toml")
    assert_one_line_error(code, err, ExitCode.INPUT_MISSING, "no.toml does not exist")
    assert outputs(tmp_path) == []


def test_nvenc_without_gpu_is_one_line(cli, source_image: Path, clip: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: NVENC may well start")
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--codec", "h264_nvenc")
    assert_one_line_error(code, err, ExitCode.ENCODER_UNAVAILABLE, "h264_nvenc could not be opened")
    assert "(A100, H100, H200) have none; use --codec libx264 or libx265" in err
    assert outputs(tmp_path) == []


def test_truncated_mp4_without_index(cli, source_image: Path, clip: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the moov index is at the end
    code, err = cli(source_image, cut, tmp_path / "out.mp4")
    assert_one_line_error(code, err, ExitCode.CORRUPT_INPUT, "truncated or corrupt")


def test_truncated_stream_stops_or_is_tolerated(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    full = write_clip(tmp_path / "full.mkv", frames=60, audio=["aac"])
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    code, err = cli(source_image, cut, tmp_path / "out.mkv")
    assert_one_line_error(code, err, ExitCode.CORRUPT_INPUT, "--tolerate-errors")
    assert outputs(tmp_path) == []
    code, err = cli(source_image, cut, tmp_path / "out.mkv", "--tolerate-errors")
    assert code == 0, err
    assert "warning: the input ends early" in err
    assert outputs(tmp_path) == ["out.mkv"]


def test_damaged_packets_stop_or_are_skipped(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Noise over part of the mp4's media data: the index is intact, some packets are not."""
    import random

    clip = write_clip(tmp_path / "in.mp4", frames=60, width=320, height=192)
    data = bytearray(clip.read_bytes())
    media_start = data.find(b"mdat")
    start = media_start + (len(data) - media_start) // 3
    noise = random.Random(1)
    data[start : start + 4000] = bytes(noise.randrange(256) for _ in range(4000))
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    code, err = cli(source_image, damaged, tmp_path / "out.mp4")
    assert_one_line_error(code, err, ExitCode.CORRUPT_INPUT, "undecodable video packet")
    assert outputs(tmp_path) == []
    code, err = cli(source_image, damaged, tmp_path / "out.mp4", "--tolerate-errors")
    assert code == 0, err
    assert "warning: skipped" in err and "undecodable video packet(s)" in err
    assert 40 < probe(tmp_path / "out.mp4", count_frames=True).video.frame_count < 60
    assert damaged.read_bytes() == bytes(data)  # inputs are never written to


def test_input_is_never_modified(cli, source_image: Path, clip: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = clip.read_bytes(), clip.stat().st_mtime_ns
    assert cli(source_image, clip, tmp_path / "out.mp4")[0] == 0
    assert (clip.read_bytes(), clip.stat().st_mtime_ns) == before


def test_a_bug_is_one_line_and_a_log_file(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    import clipswap_video.cli.doctor

    def broken(*args: object) -> int:
        raise RuntimeError("no such\nstate")

    monkeypatch.setattr(clipswap_video.cli.doctor, "run", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, err = cli("doctor", "--json")
    assert_one_line_error(code, err, ExitCode.INTERNAL, "unexpected RuntimeError: no such state;")
    [log] = tmp_path.glob("clipswap-video-*.log")
    assert err.rstrip().endswith(f"full log: {log}")
    text = log.read_text()
    assert "command: doctor --json" in text and "Traceback" in text
    assert 'raise RuntimeError("no such\\nstate")' in text  # the line that raised

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    code, err = cli("doctor")
    assert_one_line_error(code, err, ExitCode.INTERNAL, "no log could be written")


def test_a_reader_that_leaves_early_is_no_error() -> None:
    """`weights list --json | head -1`: stdout's reader goes away mid-output; the
    command stops without an "unexpected" error line or a crash log."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "clipswap_video", "weights", "list", "--json", "--no-hash"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        child.stdout.close()  # gone before the child writes (its output fits a pipe's buffer)
        err = child.stderr.read().decode()
        assert child.wait(timeout=60) == ExitCode.INTERNAL and err == "", err
