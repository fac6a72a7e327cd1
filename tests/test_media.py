"""Encode -> process -> decode round trips: nothing of the input is lost."""

from __future__ import annotations

import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from clipswap_video.config import load_settings
from clipswap_video.media import Frame, probe
from clipswap_video.pipeline import JobResult, run_video
from media_fixtures import SUBTITLES, frame_times, packets, write_clip

VFR_PTS = [0, 40, 73, 140, 173, 300, 333, 366, 500, 533, 566, 700]  # ms: gaps and bursts


def passthrough(
    source: Path, clip: Path, output: Path, *overrides: str, **kwargs: object
) -> JobResult:
    settings = load_settings(overrides=["swap.swapper=none", *overrides])  # media, not faces
    return run_video(source, clip, output, settings, **kwargs)  # type: ignore[arg-type]


def test_cfr_frames_and_pts_identical(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=45)
    result = passthrough(source_image, clip, tmp_path / "out.mp4")
    assert result.frames == 45
    assert frame_times(tmp_path / "out.mp4") == frame_times(clip)
    assert probe(tmp_path / "out.mp4", count_frames=True).video.variable_frame_rate is False


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_vfr_stays_vfr(source_image: Path, tmp_path: Path, suffix: str) -> None:
    clip = write_clip(tmp_path / "in.mkv", pts=VFR_PTS, time_base=Fraction(1, 1000))
    passthrough(source_image, clip, tmp_path / f"out{suffix}")
    assert frame_times(tmp_path / f"out{suffix}") == [Fraction(p, 1000) for p in VFR_PTS]
    assert probe(tmp_path / f"out{suffix}", count_frames=True).video.variable_frame_rate


def test_audio_packets_byte_identical(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=60, audio=["aac"])
    passthrough(source_image, clip, tmp_path / "out.mp4")
    copied = packets(tmp_path / "out.mp4", "audio")
    assert copied == packets(clip, "audio") and len(copied) > 50


def test_no_audio(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4")
    passthrough(source_image, clip, tmp_path / "out.mp4")
    kinds = [s.kind for s in probe(tmp_path / "out.mp4").streams]
    assert kinds == ["video"]


def test_two_audio_streams_and_subtitles_into_mkv(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=30, audio=["aac", "libopus"], subtitles=True)
    result = passthrough(source_image, clip, tmp_path / "out.mkv")
    out = tmp_path / "out.mkv"
    assert [s.kind for s in probe(out).streams] == ["video", "audio", "audio", "subtitle"]
    assert packets(out, "audio") == packets(clip, "audio")
    assert [text.decode() for _, text in packets(out, "subtitle")] == [t for _, _, t in SUBTITLES]
    assert result.dropped_streams == [] and result.input_problems == []


def test_subtitles_mp4_cannot_hold_are_reported(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=30, audio=["aac", "libopus"], subtitles=True)
    result = passthrough(source_image, clip, tmp_path / "out.mp4")
    assert [s.kind for s in probe(tmp_path / "out.mp4").streams] == ["video", "audio", "audio"]
    assert packets(tmp_path / "out.mp4", "audio") == packets(clip, "audio")
    assert len(result.dropped_streams) == 1 and "subtitle stream #3" in result.dropped_streams[0]


def test_data_stream_copied_or_reported(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.ts", frames=30, audio=["aac"], klv_data=True)
    result = passthrough(source_image, clip, tmp_path / "out.ts")
    assert packets(tmp_path / "out.ts", "data") == packets(clip, "data")
    assert len(packets(clip, "data")) == 10 and result.dropped_streams == []
    result = passthrough(source_image, clip, tmp_path / "out.mp4")
    assert [s.kind for s in probe(tmp_path / "out.mp4").streams] == ["video", "audio"]
    assert "data stream #2 (klv)" in result.dropped_streams[0]


def test_attachment_copied_into_mkv(source_image: Path, tmp_path: Path) -> None:
    font = bytes(range(256)) * 8
    clip = write_clip(tmp_path / "in.mkv", frames=10, subtitles=True, attachment=font)
    passthrough(source_image, clip, tmp_path / "out.mkv")
    with av.open(str(tmp_path / "out.mkv")) as container:
        (attached,) = container.streams.attachments
        assert (attached.name, attached.data) == ("font.ttf", font)


def test_rotation_kept(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", rotation=90)
    passthrough(source_image, clip, tmp_path / "out.mp4")
    before, after = probe(clip).video, probe(tmp_path / "out.mp4").video
    assert after.rotation == before.rotation == 90
    assert after.display_matrix == before.display_matrix
    assert (after.width, after.height) == (before.width, before.height)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_sample_aspect_ratio_kept(source_image: Path, tmp_path: Path, suffix: str) -> None:
    clip = write_clip(tmp_path / f"in{suffix}", sample_aspect_ratio=Fraction(4, 3))
    passthrough(source_image, clip, tmp_path / f"out{suffix}")
    assert probe(clip).video.sample_aspect_ratio == Fraction(4, 3)
    assert probe(tmp_path / f"out{suffix}").video.sample_aspect_ratio == Fraction(4, 3)


def test_ten_bit_and_colour_tags_kept(source_image: Path, tmp_path: Path) -> None:
    hdr = {"color_range": 1, "colorspace": 9, "color_primaries": 9, "color_trc": 16}  # BT.2020 PQ
    clip = write_clip(tmp_path / "in.mp4", pix_fmt="yuv420p10le", color=hdr)
    passthrough(source_image, clip, tmp_path / "out.mp4")
    video = probe(tmp_path / "out.mp4").video
    assert (video.pix_fmt, video.bit_depth) == ("yuv420p10le", 10)
    kept = {key: getattr(video, key) for key in hdr}
    assert kept == hdr


def test_odd_size_keeps_exact_size(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", width=641, height=359, codec="ffv1", frames=6)
    result = passthrough(source_image, clip, tmp_path / "out.mp4")
    video = probe(tmp_path / "out.mp4", count_frames=True).video
    assert (video.width, video.height, video.frame_count) == (641, 359, 6)
    assert video.pix_fmt == "yuv444p"  # 4:2:0 cannot code an odd size in H.264
    with av.open(str(clip)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        first_in = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        first_out = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(first_in - first_out).mean() < 3
    assert result.frames == 6


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_chapters_kept(source_image: Path, tmp_path: Path, suffix: str) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=30, chapters=["opening", "the swap"])
    passthrough(source_image, clip, tmp_path / f"out{suffix}")

    def outline(path: Path) -> list[tuple[str, float, float]]:
        return [
            (
                c["metadata"]["title"],
                float(c["start"] * c["time_base"]),
                float(c["end"] * c["time_base"]),
            )
            for c in probe(path).chapters
        ]

    assert outline(clip) == [("opening", 0.0, 0.5), ("the swap", 0.5, 1.0)]
    assert outline(tmp_path / f"out{suffix}") == outline(clip)


def test_disclosure_tag_and_metadata(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4")
    passthrough(source_image, clip, tmp_path / "out.mp4")
    comment = probe(tmp_path / "out.mp4").metadata["comment"]
    assert comment.startswith("processed by clipswap-video") and "no face swapped" in comment


def test_changed_pixels_are_encoded(source_image: Path, tmp_path: Path) -> None:
    """A stage that paints a black box: the box is in the output, the rest is not changed."""
    clip = write_clip(tmp_path / "in.mp4", frames=10)

    def paint(frame: Frame) -> None:
        rgb = frame.rgb().copy()
        rgb[16:48, 16:48] = 0
        frame.replace_pixels(rgb)

    passthrough(source_image, clip, tmp_path / "out.mp4", stages=[paint])
    with av.open(str(clip)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        for before, after in zip(a.decode(video=0), b.decode(video=0), strict=True):
            x, y = (
                before.to_ndarray(format="rgb24").astype(int),
                after.to_ndarray(format="rgb24").astype(int),
            )
            assert y[20:44, 20:44].max() < 12
            assert np.abs(x[:, 64:] - y[:, 64:]).mean() < 3


def test_encoder_settings_apply(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=10)
    passthrough(
        source_image, clip, tmp_path / "out.mkv", "video.codec=libx265", "video.preset=ultrafast"
    )
    assert probe(tmp_path / "out.mkv").video.codec == "hevc"


def test_memory_is_bounded_by_queue(source_image: Path, tmp_path: Path) -> None:
    """Frames alive at once never exceed the two queues plus the ones in hand."""
    clip = write_clip(tmp_path / "in.mp4", frames=120)
    alive: weakref.WeakSet[Frame] = weakref.WeakSet()
    peak = 0

    def count_frames(frame: Frame) -> None:
        nonlocal peak
        alive.add(frame)
        peak = max(peak, len(alive))

    passthrough(
        source_image, clip, tmp_path / "out.mp4", "pipeline.queue_size=4", stages=[count_frames]
    )
    assert 4 < peak <= 2 * 4 + 4


def test_codec_auto_falls_back_to_libx264_without_gpu(source_image: Path, tmp_path: Path) -> None:
    from clipswap_video.media.encoder import nvenc_usable

    clip = write_clip(tmp_path / "in.mp4", frames=5)
    passthrough(source_image, clip, tmp_path / "out.mp4", "video.h264_codec=auto")
    encoder_tag = probe(tmp_path / "out.mp4").video.codec
    assert encoder_tag == "h264"
    with av.open(str(tmp_path / "out.mp4")) as container:
        # x264 writes its version string in an SEI; NVENC does not.
        first = next(container.decode(video=0))
        x264_sei = any(b"x264" in bytes(side) for side in first.side_data)
    assert x264_sei is (not nvenc_usable())


def test_mov_refuses_opus_and_srt_with_notes(source_image: Path, tmp_path: Path) -> None:
    """FFmpeg's codec table says MOV holds Opus; its muxer refuses it: the job still
    runs, the Opus stream transcoded to AAC (or, with audio.mode = drop, left out)."""
    clip = write_clip(tmp_path / "in.mkv", frames=20, audio=["aac", "libopus"], subtitles=True)
    result = passthrough(source_image, clip, tmp_path / "out.mov")
    with av.open(str(tmp_path / "out.mov")) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac", "aac"]
    assert result.transcoded_streams == [
        "transcoding audio stream #2 (opus, 2 ch, 48000 Hz) to aac at 256 kb/s: "
        "mov cannot hold opus"
    ]
    assert [note.split(":")[0] for note in result.dropped_streams] == [
        "dropped subtitle stream #3 (srt)"
    ]
    result = passthrough(source_image, clip, tmp_path / "drop.mov", "audio.mode=drop")
    assert [s.kind for s in probe(tmp_path / "drop.mov").streams] == ["video", "audio"]
    assert [note.split(":")[0] for note in result.dropped_streams] == [
        "dropped audio stream #2 (opus)",
        "dropped subtitle stream #3 (srt)",
    ]


def test_an_all_intra_input_gets_the_encoders_own_gop(source_image: Path, tmp_path: Path) -> None:
    """Decoded frames remember their picture type: an all-intra input (MJPEG)
    must not make every output frame a keyframe."""
    clip = write_clip(tmp_path / "in.mkv", frames=30, codec="mjpeg", pix_fmt="yuvj420p")
    passthrough(source_image, clip, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as container:
        keyframes = [packet.is_keyframe for packet in container.demux(video=0) if packet.size]
    assert len(keyframes) == 30 and sum(keyframes) == 1
