"""The output's container picks its encoder (media/containers.py), ProRes and FFV1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from test_media import passthrough

from clipswap_video.batch.segments import segment_file
from clipswap_video.config import load_settings
from clipswap_video.media import probe
from clipswap_video.media.containers import CONTAINERS, container_for, resolve_encoder
from media_fixtures import frame_times, write_clip

# What each row of the table gives with the default settings.
EXPECTED_VIDEO = {
    ".mp4": "h264",
    ".m4v": "h264",
    ".mov": "h264",
    ".mkv": "h264",
    ".ts": "h264",
    ".webm": "vp9",
    ".avi": "mpeg4",
}
EXPECTED_AUDIO = {".webm": "opus"}  # the others hold the input's AAC as it is


@pytest.fixture(scope="module")
def aac_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("aac")
    return write_clip(folder / "in.mp4", frames=30, audio=["aac"])


def test_the_table_covers_every_suffix_it_documents() -> None:
    suffixes = {suffix for row in CONTAINERS for suffix in row.suffixes}
    assert set(EXPECTED_VIDEO) <= suffixes
    assert container_for(Path("OUT.WEBM")) is not None  # any letter case
    assert container_for(Path("out.nut")) is None  # FFmpeg's guess, H.264


@pytest.mark.parametrize("suffix", sorted(EXPECTED_VIDEO))
def test_every_container_gets_its_encoder_and_keeps_its_sound(
    source_image: Path, aac_clip: Path, tmp_path: Path, suffix: str
) -> None:
    output = tmp_path / f"out{suffix}"
    result = passthrough(source_image, aac_clip, output, "video.preset=ultrafast")
    assert result.frames == 30
    info = probe(output, count_frames=True)
    assert info.video.codec == EXPECTED_VIDEO[suffix]
    assert info.video.frame_count == 30
    audio = [stream.codec for stream in info.streams if stream.kind == "audio"]
    assert audio == [EXPECTED_AUDIO.get(suffix, "aac")]
    # every frame where it was, relative to the first (Matroska and MPEG-TS may
    # start a B-frame delay late; Matroska rounds to milliseconds)
    times = [float(t) for t in frame_times(output)]
    assert [t - times[0] for t in times] == pytest.approx([i / 30 for i in range(30)], abs=1e-3)
    assert abs(_audio_seconds(output) - _audio_seconds(aac_clip)) <= 1024 / 44100 + 1 / 30


def test_an_encoder_the_container_refuses_is_one_line_before_decoding(
    source_image: Path, aac_clip: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.webm"
    run = subprocess.run(
        [sys.executable, "-m", "clipswap_video", str(source_image), str(aac_clip), str(output)]
        + ["--swapper", "none", "--codec", "libx264"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 9
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "WebM cannot hold libx264" in lines[0] and "libvpx-vp9" in lines[0]
    assert ".mp4" in lines[0]  # where libx264 would go
    assert list(tmp_path.iterdir()) == []  # no output, no partial file


def test_webm_takes_av1_by_config(source_image: Path, aac_clip: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.webm"
    passthrough(source_image, aac_clip, output, "video.webm_codec=libsvtav1", 'video.preset="12"')
    assert probe(output).video.codec == "av1"  # not its decoder, libdav1d


@pytest.mark.parametrize(
    ("pix_fmt", "profile", "expected_fmt", "expected_profile"),
    [
        ("yuv420p10le", "auto", "yuv422p10le", "HQ"),
        ("yuv420p", "auto", "yuv422p10le", "HQ"),  # ProRes is 10-bit whatever comes in
        ("yuv444p12le", "auto", "yuv444p12le", "4444"),  # 4444 decodes as 12-bit
        ("yuv420p10le", "lt", "yuv422p10le", "LT"),
    ],
)
def test_prores_profile_and_depth(
    source_image: Path,
    tmp_path: Path,
    pix_fmt: str,
    profile: str,
    expected_fmt: str,
    expected_profile: str,
) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=4, codec="ffv1", pix_fmt=pix_fmt)
    output = tmp_path / "out.mov"
    settings = ["video.codec=prores_ks", f"video.prores_profile={profile}"]
    passthrough(source_image, clip, output, *settings)
    video = probe(output).video
    assert (video.codec, video.pix_fmt) == ("prores", expected_fmt)
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.profile == expected_profile


def test_ffv1_in_matroska_is_lossless(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=6, codec="ffv1", pix_fmt="yuv420p10le")
    output = tmp_path / "archive.mkv"
    passthrough(source_image, clip, output, "video.codec=ffv1")
    assert probe(output).video.codec == "ffv1"
    for original, archived in zip(_planes(clip), _planes(output), strict=True):
        assert np.array_equal(original, archived)


def test_a_segment_file_holds_the_whole_jobs_encoder(tmp_path: Path) -> None:
    def suffix(output: str, *overrides: str) -> str:
        settings = load_settings(overrides=list(overrides))
        return segment_file(tmp_path / output, 0, settings).suffix

    assert suffix("out.webm") == ".mp4"  # VP9 in MP4 keeps pts and dts exactly
    assert suffix("out.mov", "video.codec=prores_ks") == ".mov"
    assert resolve_encoder(Path("out.webm"), load_settings().video) == "libvpx-vp9"


def _planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray() for frame in container.decode(video=0)]


def _audio_seconds(path: Path) -> float:
    """From the first audio packet's start to the last one's end."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        stamps = [
            (packet.pts, packet.duration)
            for packet in container.demux(stream)
            if packet.size and packet.pts is not None
        ]
    first = min(pts for pts, _ in stamps)
    last = max(pts + (duration or 0) for pts, duration in stamps)
    assert stream.time_base is not None
    return float((last - first) * stream.time_base)


def test_probe_says_what_an_output_would_get(aac_clip: Path, tmp_path: Path) -> None:
    def probe_output(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "clipswap_video", "probe", str(aac_clip), "--output"]
        return subprocess.run([*command, *arguments], capture_output=True, text=True)

    webm = probe_output(str(tmp_path / "out.webm"), "--json")
    assert webm.returncode == 0, webm.stderr
    plan = json.loads(webm.stdout)
    assert (plan["container"], plan["encoder"]["codec"]) == ("WebM", "libvpx-vp9")
    (audio,) = plan["streams"]
    assert (audio["kind"], audio["action"], audio["target"]["encoder"]) == (
        "audio",
        "transcode",
        "libopus",
    )
    text = probe_output(str(tmp_path / "out.mov"), "--codec", "prores_ks").stdout
    assert "prores_ks, yuv422p10le" in text and "profile=hq" in text and "audio aac: copy" in text
    refused = probe_output(str(tmp_path / "out.webm"), "--codec", "libx264")
    assert refused.returncode == 9 and "WebM cannot hold libx264" in refused.stderr
    assert list(tmp_path.iterdir()) == []  # a plan writes nothing
