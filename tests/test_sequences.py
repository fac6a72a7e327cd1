"""Image sequences in and out (VFX plates and renders): names, rates and gaps,
depths kept, the disclosure tag in every file, a folder that appears whole or
not at all, and one clear line for each bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sequence_fixtures import (
    decode_image,
    read_exr,
    video_frames,
    write_exr,
    write_images,
)

from clipswap_video.cli import main
from clipswap_video.config import load_settings
from clipswap_video.config_sections import SequenceSettings
from clipswap_video.demo import write_demo_media
from clipswap_video.errors import ExitCode
from clipswap_video.media import Frame, probe
from clipswap_video.media.sequence import describe_numbers, scan_sequence
from clipswap_video.media.sequence_reader import SequenceReader
from clipswap_video.media.transfer import display_to_linear, linear_to_display
from clipswap_video.pipeline import run_video
from media_fixtures import picture, write_clip

CliRun = object  # the `cli` fixture of conftest.py
NONE = ("--swapper", "none", "-q")
PLATE = "frame_%06d.png"


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    """plate/frame_001001.png .. 001008.png, 8-bit, 96x64; returns the pattern."""
    write_images(tmp_path / "plate", PLATE, range(1001, 1009))
    return tmp_path / "plate" / PLATE


# --- the transfer curve ---------------------------------------------------------------------


def test_the_transfer_is_srgb_and_round_trips_hdr_and_negative_values() -> None:
    linear = np.array([[[0.0, 0.0031308, 0.18], [1.0, 4.0, 100.0], [-0.5, -4.0, 1e-6]]], np.float32)
    display = linear_to_display(linear)
    assert display[0, 0, :2] == pytest.approx([0.0, 0.04045], abs=1e-6)
    assert display[0, 0, 2] == pytest.approx(0.4613561, abs=1e-6)  # 18 % grey
    assert display[0, 1, 0] == pytest.approx(1.0)
    assert display[0, 1, 1] > 1.8 and display[0, 1, 2] > 7  # highlights go on above 1
    assert display[0, 2, 0] == pytest.approx(-linear_to_display(-linear)[0, 2, 0])  # mirrored
    np.testing.assert_allclose(display_to_linear(display), linear, rtol=1e-6, atol=1e-9)


# --- names and numbers ----------------------------------------------------------------------


def test_a_pattern_a_glob_and_a_folder_name_one_sequence(tmp_path: Path) -> None:
    folder = tmp_path / "plate"
    write_images(folder, "sh_%04d.png", [998, 999, 1000, 1002, 1003, 1006])
    (folder / "audio.wav").write_bytes(b"")  # not a frame
    for named in (folder / "sh_%04d.png", folder / "*.png", folder):
        sequence = scan_sequence(named)
        assert str(sequence.pattern) == str(folder / "sh_%04d.png")
        assert [number for number, _ in sequence.files] == [998, 999, 1000, 1002, 1003, 1006]
        assert sequence.missing() == [1001, 1004, 1005]
    assert describe_numbers([1005, 1017, 1018]) == "1005, 1017-1018"
    assert [n for n, _ in scan_sequence(folder / "sh_%d.png").files] == [1000, 1002, 1003, 1006]


# --- sequences out --------------------------------------------------------------------------


def test_png_sequence_of_a_vfr_clip_numbered_by_index_or_from_a_start(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(
        tmp_path / "vfr.mp4", frames=6, time_base=Fraction(1, 1000), pts=[0, 40, 70, 140, 150, 210]
    )
    out = tmp_path / "shot" / "f_%04d.png"
    code, err = cli(source_image, clip, out, *NONE)  # type: ignore[operator]
    assert code == 0, err
    assert names(tmp_path / "shot") == [f"f_{i:04d}.png" for i in range(6)]
    for index, (_, expected) in enumerate(video_frames(clip)):
        written = decode_image(tmp_path / "shot" / f"f_{index:04d}.png")
        assert written.format.name == "rgb24"
        np.testing.assert_array_equal(written.to_ndarray(), expected)
        assert "clipswap-video" in written.metadata["Comment"]  # the disclosure, in each file
    code, err = cli(source_image, clip, out, "--start-number", "1001", *NONE)  # type: ignore[operator]
    assert code == 0, err  # the earlier sequence of this pattern is replaced
    assert names(tmp_path / "shot") == [f"f_{i:04d}.png" for i in range(1001, 1007)]
    assert names(tmp_path) == ["shot", "vfr.mp4"]  # no partial folder left


def test_a_range_is_numbered_by_its_index_in_the_whole_clip(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=20, fps=30)
    out = tmp_path / "shot" / "f_%03d.png"
    code, err = cli(source_image, clip, out, "--start", "0.3", *NONE)  # type: ignore[operator]
    assert code == 0, err
    assert names(tmp_path / "shot") == [f"f_{i:03d}.png" for i in range(9, 20)]


def test_a_10_bit_clip_gives_16_bit_png(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=5, codec="ffv1", pix_fmt="yuv420p10le")
    out = tmp_path / "shot" / "f_%04d.png"
    code, err = cli(source_image, clip, out, *NONE)  # type: ignore[operator]
    assert code == 0, err
    for index, (_, expected) in enumerate(video_frames(clip, format="rgb48le")):
        written = decode_image(tmp_path / "shot" / f"f_{index:04d}.png")
        assert written.format.name == "rgb48be"
        np.testing.assert_array_equal(written.to_ndarray(), expected)
        assert np.any(expected % 257)  # more than 8 bits of detail kept


def test_exr_round_trip_keeps_values_beyond_0_and_1(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    plates = [rng.uniform(-0.5, 8.0, (48, 80, 3)).astype(np.float32) for _ in range(5)]
    for number, linear in enumerate(plates, start=1):
        write_exr(tmp_path / "plate" / f"p.{number:04d}.exr", linear, fps=Fraction(25))
    write_exr(tmp_path / "half" / "h.0001.exr", plates[0], half=True)
    for folder, out in (("plate", "shot/s.%04d.exr"), ("half", "halfout/h.%04d.exr")):
        code, err = cli(source_image, tmp_path / folder, tmp_path / out, *NONE)  # type: ignore[operator]
        assert code == 0, err
    for number, linear in enumerate(plates, start=1):
        written, header = read_exr(tmp_path / "shot" / f"s.{number:04d}.exr")
        # Half floats: within half an ulp (2^-11 of the value), down to denormals.
        np.testing.assert_allclose(written, linear, rtol=2**-10, atol=2**-24)
        assert written.max() > 1 and written.min() < 0
        assert header["framesPerSecond"] == Fraction(25)  # the input's attribute
        assert "clipswap-video" in str(header["comments"])
        assert header["chromaticities"][:2] == pytest.approx((0.64, 0.33))
    written, _ = read_exr(tmp_path / "halfout" / "h.0001.exr")
    np.testing.assert_array_equal(written, plates[0].astype(np.float16).astype(np.float32))


def test_a_gap_is_one_warning_and_keeps_its_time_and_number(
    cli: CliRun, source_image: Path, tmp_path: Path, plate: Path
) -> None:
    (tmp_path / "plate" / "frame_001005.png").unlink()
    code, err = cli(source_image, plate, tmp_path / "shot" / PLATE, "--swapper", "none")  # type: ignore[operator]
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning")]
    assert warnings == [
        f"warning: {plate}: 1 frame number(s) missing: 1005 (--fill-gaps fills them)"
    ]
    assert "frame_001005.png" not in names(tmp_path / "shot")
    assert len(names(tmp_path / "shot")) == 7
    with SequenceReader(plate) as reader:
        assert [frame.pts for frame in reader.frames()] == [0, 1, 2, 3, 5, 6, 7]
    code, err = cli(source_image, plate, tmp_path / "gap.mp4", *NONE)  # type: ignore[operator]
    assert code == 0, err
    times = [seconds for seconds, _ in video_frames(tmp_path / "gap.mp4")]
    assert times[3:5] == pytest.approx([3 / 24, 5 / 24])  # the frame before the gap lasts 2

    code, err = cli(source_image, plate, tmp_path / "full" / PLATE, "--fill-gaps", *NONE)  # type: ignore[operator]
    assert code == 0, err
    assert len(names(tmp_path / "full")) == 8
    filled, before = (decode_image(tmp_path / "full" / (PLATE % n)) for n in (1005, 1004))
    np.testing.assert_array_equal(filled.to_ndarray(), before.to_ndarray())
    with SequenceReader(plate, settings=SequenceSettings(fill_gaps=True), quiet=True) as reader:
        assert [frame.pts for frame in reader.frames()] == list(range(8))


def test_sequence_in_video_out_keeps_frames_rate_and_colours(
    cli: CliRun, source_image: Path, tmp_path: Path, plate: Path
) -> None:
    code, err = cli(source_image, plate, tmp_path / "out.mp4", "--fps", "23.976", *NONE)  # type: ignore[operator]
    assert code == 0, err
    info = probe(tmp_path / "out.mp4", count_frames=True)
    assert info.video.frame_count == 8
    assert info.video.average_rate == Fraction(24000, 1001)
    assert (info.video.colorspace, info.video.color_range) == (1, 1)  # BT.709, limited: as coded
    first = video_frames(tmp_path / "out.mp4")[0][1].astype(int)
    assert np.abs(first - picture(1001, 96, 64)).mean() < 4  # the colours survive the YUV trip


def test_10_bit_dpx_and_16_bit_tiff_in_come_out_exact(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    tens = [rng.integers(0, 1024, (64, 96, 3)).astype(np.uint16) for _ in range(5)]
    write_images(
        tmp_path / "dpx",
        "d_%04d.dpx",
        range(5),
        pix_fmt="gbrp10le",
        pictures=lambda n: tens[n] << 6,
    )
    sixteens = [rng.integers(0, 65536, (64, 96, 3)).astype(np.uint16) for _ in range(5)]
    write_images(
        tmp_path / "tif", "t_%04d.tif", range(5), pix_fmt="rgb48le", pictures=lambda n: sixteens[n]
    )
    assert probe(tmp_path / "dpx").video.bit_depth == 10
    for folder in ("dpx", "tif"):
        out = tmp_path / f"{folder}out" / f"o_%04d.{folder}"
        code, err = cli(source_image, tmp_path / folder, out, *NONE)  # type: ignore[operator]
        assert code == 0, err
    for number in range(5):
        dpx = decode_image(tmp_path / "dpxout" / f"o_{number:04d}.dpx")
        assert dpx.format.name == "gbrp10le" and "clipswap-video" in dpx.metadata["Creator"]
        np.testing.assert_array_equal(
            dpx.reformat(format="rgb48le").to_ndarray() >> 6, tens[number]
        )
        tif = decode_image(tmp_path / "tifout" / f"o_{number:04d}.tif")
        assert tif.format.name == "rgb48le" and "clipswap-video" in tif.metadata["ImageDescription"]
        np.testing.assert_array_equal(tif.to_ndarray(), sixteens[number])


# --- the swap on sequences -----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray], list[tuple]]:
    """The demo clip's 6 frames at 640x360 (a face moving across), its source
    photo and the face box of each frame."""
    media = write_demo_media(
        tmp_path_factory.mktemp("demo"), seconds=0.2, width=640, height=360, audio=False
    )
    frames = [picture for _, picture in video_frames(media.video)]
    truth = json.loads(media.landmarks.read_text())
    return media.source_image, frames, [entry["faces"][0]["box"] for entry in truth["frames"]]


def far_from(box: list[float], shape: tuple[int, ...]) -> np.ndarray:
    """Where a pixel is at least half the box's size away from the face box."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) / 2, (y1 - y0) / 2
    far = np.ones(shape[:2], bool)
    far[max(0, int(y0 - dy)) : int(y1 + dy) + 1, max(0, int(x0 - dx)) : int(x1 + dx) + 1] = False
    return far


def inside(box: list[float]) -> tuple[slice, slice]:
    x0, y0, x1, y1 = (round(v) for v in box)
    return slice(y0, y1), slice(x0, x1)


@pytest.mark.slow
def test_the_classic_swap_on_a_png_sequence_changes_the_face_alone(
    cli: CliRun, tmp_path: Path, demo: tuple[Path, list[np.ndarray], list[list[float]]]
) -> None:
    source, frames, boxes = demo
    write_images(tmp_path / "plate", PLATE, range(1, 7), pictures=lambda n: frames[n - 1])
    out = tmp_path / "shot" / PLATE
    code, err = cli(source, tmp_path / "plate" / PLATE, out, "--swapper", "classic", "-q")  # type: ignore[operator]
    assert code == 0, err
    for number, (before, box) in enumerate(zip(frames, boxes, strict=True), start=1):
        written = decode_image(tmp_path / "shot" / (PLATE % number))
        change = np.abs(written.to_ndarray().astype(int) - before).max(axis=2)
        assert change[inside(box)].mean() > 8  # the face is another
        assert not change[far_from(box, change.shape)].any()  # the rest is the input's, exactly
        assert written.metadata["Comment"].startswith("synthetic: face swapped")


@pytest.mark.slow
def test_a_swapped_exr_keeps_its_hdr_values_outside_the_face(
    cli: CliRun, tmp_path: Path, demo: tuple[Path, list[np.ndarray], list[list[float]]]
) -> None:
    source, frames, boxes = demo
    plates = []
    for number, frame in enumerate(frames, start=1):
        display = frame / 255.0  # the sRGB curve's inverse, written out here
        linear = np.where(display <= 0.04045, display / 12.92, ((display + 0.055) / 1.055) ** 2.4)
        linear[:40, :40] = 6.0  # a highlight far brighter than white, in a corner
        linear[-40:, -40:] = -0.25  # and a negative value, as grading leaves
        plates.append(linear.astype(np.float16).astype(np.float32))
        write_exr(tmp_path / "plate" / f"p_{number:04d}.exr", plates[-1], half=True)
    out = tmp_path / "shot" / "s_%04d.exr"
    code, err = cli(source, tmp_path / "plate", out, "--swapper", "classic", "-q")  # type: ignore[operator]
    assert code == 0, err
    for number, (before, box) in enumerate(zip(plates, boxes, strict=True), start=1):
        after, _ = read_exr(tmp_path / "shot" / f"s_{number:04d}.exr")
        far = far_from(box, after.shape)
        np.testing.assert_array_equal(after[far], before[far])
        assert after[0, 0, 0] == 6.0 and after[-1, -1, 0] == -0.25
        assert np.abs(after - before)[inside(box)].mean() > 0.02  # the face is another


# --- the sound beside the frames ------------------------------------------------------------


def wav_samples(path: Path) -> np.ndarray:
    """A WAV file's first channel as floats in [-1, 1]."""
    with av.open(str(path)) as wav:
        assert wav.streams.audio[0].codec_context.name.startswith("pcm_")
        channels = wav.streams.audio[0].channels
        frames = [frame.to_ndarray().reshape(-1, channels)[:, 0] for frame in wav.decode(audio=0)]
    samples = np.concatenate(frames).astype(np.float64)
    return samples / np.iinfo(frames[0].dtype).max


def lag_of_tone(samples: np.ndarray, start_s: float) -> int:
    """How many samples late `samples` is against media_fixtures' 440 Hz tone from `start_s`."""
    t = start_s + np.arange(4000) / 48000
    tone = 0.2 * np.sin(2 * np.pi * 440 * t)
    lags = range(-60, 61)
    return max(lags, key=lambda lag: float(np.dot(samples[100 + lag : 3100 + lag], tone[100:3100])))


def test_the_first_audio_stream_is_pcm_wav_beside_from_the_first_frame(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=30, fps=30, audio=["aac", "pcm_s16le"])
    code, err = cli(source_image, clip, tmp_path / "shot" / PLATE, "--swapper", "none")  # type: ignore[operator]
    assert code == 0, err
    assert "an image sequence keeps no audio #2 (pcm_s16le)" in err  # the first stream only
    whole = wav_samples(tmp_path / "shot" / "audio.wav")
    assert len(whole) == pytest.approx(48000, abs=1024)  # as long as the clip, to an AAC frame
    assert lag_of_tone(whole, 0.0) == 0  # sample 0 plays with frame 0

    code, err = cli(source_image, clip, tmp_path / "part" / PLATE, "--start", "0.5", *NONE)  # type: ignore[operator]
    assert code == 0, err
    part = wav_samples(tmp_path / "part" / "audio.wav")
    assert len(part) == pytest.approx(24000, abs=1024)
    assert lag_of_tone(part, 0.5) == 0  # cut to the sample at the range's first frame

    code, err = cli(source_image, clip, tmp_path / "mute" / PLATE, "--audio", "drop", *NONE)  # type: ignore[operator]
    assert code == 0, err
    assert "audio.wav" not in names(tmp_path / "mute")


# --- a folder whole or not at all -----------------------------------------------------------


def test_an_interrupted_job_leaves_no_partial_folder(
    source_image: Path, tmp_path: Path, plate: Path
) -> None:
    def interrupt_at_three(frame: Frame) -> None:
        if frame.index == 3:
            raise KeyboardInterrupt

    settings = load_settings(overrides=["swap.swapper=none"])
    with pytest.raises(KeyboardInterrupt):
        run_video(
            source_image, plate, tmp_path / "shot" / PLATE, settings, stages=[interrupt_at_three]
        )
    assert names(tmp_path) == ["plate"]


def test_an_earlier_sequence_and_a_killed_runs_partial_folder_are_replaced(
    cli: CliRun, source_image: Path, tmp_path: Path, plate: Path
) -> None:
    write_images(tmp_path / "shot", PLATE, [7, 8])  # an earlier render of this pattern
    (tmp_path / "shot" / "audio.wav").write_bytes(b"RIFF")
    write_images(tmp_path / "shot.partial", PLATE, [1])  # what a kill -9 leaves
    code, err = cli(source_image, plate, tmp_path / "shot" / PLATE, *NONE)  # type: ignore[operator]
    assert code == 0, err
    assert names(tmp_path / "shot") == [PLATE % n for n in range(1001, 1009)]
    assert names(tmp_path) == ["plate", "shot"]


@pytest.mark.slow
def test_sigint_mid_sequence_exits_130_and_leaves_no_folder(
    source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=600, width=640, height=360)
    out = tmp_path / "shot" / "f_%04d.png"
    command = [sys.executable, "-m", "clipswap_video", source_image, clip, out, *NONE]
    process = subprocess.Popen([str(part) for part in command], stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "shot.partial"
    deadline = time.monotonic() + 60
    while not (partial.is_dir() and any(partial.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert names(tmp_path) == ["in.mp4"]


# --- bad inputs -----------------------------------------------------------------------------


def _mixed_sizes(tmp_path: Path) -> Path:
    write_images(tmp_path / "plate", PLATE, [1, 2])
    write_images(tmp_path / "plate", PLATE, [3], width=64)
    return tmp_path / "plate" / PLATE


def _damaged(tmp_path: Path) -> Path:
    write_images(tmp_path / "plate", PLATE, [1, 2, 4])
    (tmp_path / "plate" / (PLATE % 3)).write_bytes(b"\x89PNG\r\n\x1a\n not the rest")
    return tmp_path / "plate" / PLATE


def _nothing_matches(tmp_path: Path) -> Path:
    write_images(tmp_path / "plate", "other_%04d.png", [1, 2])
    return tmp_path / "plate" / PLATE


def _two_sequences(tmp_path: Path) -> Path:
    write_images(tmp_path / "plate", "a_%04d.png", [1, 2])
    write_images(tmp_path / "plate", "b_%04d.png", [1, 2])
    return tmp_path / "plate"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "plate").mkdir()
    return tmp_path / "plate"


def _crowded_output(tmp_path: Path) -> Path:
    (tmp_path / "shot").mkdir()
    (tmp_path / "shot" / "notes.txt").write_text("mine")
    return tmp_path / "shot" / PLATE


@pytest.mark.parametrize(
    ("make_in", "make_out", "extra", "expected", "words"),
    [
        (_empty, None, (), ExitCode.INPUT_UNREADABLE, "is a folder with no numbered image"),
        (_nothing_matches, None, (), ExitCode.INPUT_MISSING, "matches no file"),
        (_mixed_sizes, None, (), ExitCode.INPUT_UNREADABLE, "every image of a sequence must"),
        (_damaged, None, (), ExitCode.CORRUPT_INPUT, "frame_000003.png cannot be read"),
        (_two_sequences, None, (), ExitCode.INPUT_UNREADABLE, "holds 2 numbered sequences"),
        (_damaged, _crowded_output, (), ExitCode.BAD_OUTPUT_PATH, "holds other files (notes.txt)"),
        (_damaged, lambda d: Path(PLATE), (), ExitCode.BAD_OUTPUT_PATH, "a folder of its own"),
        (_damaged, lambda d: d / "plate" / "o_%04d.png", (), ExitCode.BAD_OUTPUT_PATH, "input"),
        (_damaged, None, ("--fps", "fast"), ExitCode.BAD_CONFIG_VALUE, "not a frame rate"),
        (_damaged, None, ("--review", "r.mp4"), ExitCode.BAD_OUTPUT_PATH, "--review"),
    ],
    ids=[
        "empty-folder",
        "pattern-matching-nothing",
        "mixed-sizes",
        "unreadable-image",
        "two-sequences",
        "output-folder-not-empty",
        "output-without-folder",
        "output-in-the-input-folder",
        "bad-fps",
        "review",
    ],
)
def test_bad_sequences_are_one_line_and_write_nothing(
    cli: CliRun, source_image: Path, tmp_path: Path, make_in, make_out, extra, expected, words
) -> None:  # type: ignore[no-untyped-def]
    sequence = make_in(tmp_path)
    out = make_out(tmp_path) if make_out else tmp_path / "shot" / PLATE
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    code, err = cli(source_image, sequence, out, *extra, "--swapper", "none")  # type: ignore[operator]
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected, err
    assert lines[-1].startswith("error: ") and words in lines[-1], err
    assert "Traceback" not in err
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before
    assert not any(Path.cwd().iterdir())


def test_a_tolerated_unreadable_image_is_skipped_and_said(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    plate = _damaged(tmp_path)
    code, err = cli(source_image, plate, tmp_path / "shot" / PLATE, "--tolerate-errors")  # type: ignore[operator]
    assert code == 0, err
    assert names(tmp_path / "shot") == [PLATE % n for n in (1, 2, 4)]
    assert "skipped 1 unreadable image(s): frame_000003.png" in err


# --- the other commands ---------------------------------------------------------------------


def test_probe_and_preview_read_a_sequence(
    source_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(1, 6):
        linear = np.full((48, 64, 3), number / 10, np.float32)
        write_exr(tmp_path / "plate" / f"p_{number:03d}.exr", linear, fps=Fraction(24000, 1001))
    write_exr(tmp_path / "alpha" / "a_001.exr", np.zeros((48, 64, 3)), alpha=True)
    info = probe(tmp_path / "plate" / "p_%03d.exr")
    assert info.format_name == "image sequence (exr)" and info.first_number == 1
    assert info.video.frame_count == 5 and info.video.pix_fmt == "rgbf32le"
    assert info.video.average_rate == Fraction(24000, 1001)  # from framesPerSecond
    assert main(["probe", str(tmp_path / "plate" / "*.exr"), "--json"]) == 0
    assert '"format_name": "image sequence (exr)"' in capsys.readouterr().out
    preview = tmp_path / "preview.png"
    args = ["preview", source_image, tmp_path / "plate", "--at", "0.1", "--out", preview]
    assert main([str(arg) for arg in [*args, "--swapper", "none", "-q"]]) == 0
    assert preview.is_file()
    out = tmp_path / "alphaout" / "a_%03d.png"
    assert main([str(source_image), str(tmp_path / "alpha"), str(out), "--swapper", "none"]) == 0
    assert "the alpha channel is ignored" in capsys.readouterr().err
