"""Odd but valid inputs that real footage brings, through the real CLI.

Each test builds its input with plain PyAV (never the project's writer),
re-encodes it with `--swapper none` and checks what a demanding user expects of
the output: every frame, the streams beside the video, and the tags.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import numpy as np
import pytest

from clipswap_video.cli import main
from clipswap_video.media import probe
from clipswap_video.media.probe import display_matrix
from media_fixtures import add_audio, frame_times, packets, picture, write_audio, write_clip

CliRun = Callable[..., tuple[int, str]]
SIZE = (96, 64)
FRAMES = 10
HDR = {"color_range": 1, "colorspace": 9, "color_primaries": 9, "color_trc": 16}  # BT.2020 PQ
HFLIP = (-65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)  # av_display_matrix_flip(hflip=1)
CAFE = "Café".encode("latin-1").decode("utf-8", "surrogateescape")  # b"Caf\xe9"
SENAL = "Señal".encode("latin-1").decode("utf-8", "surrogateescape")  # b"Se\xf1al"


def swap(cli: CliRun, source: Path, clip: Path, output: Path, *flags: str) -> tuple[int, str]:
    """`clipswap-video SRC IN OUT --swapper none`: a re-encode with no face work."""
    return cli(source, clip, output, "--swapper", "none", *flags)


def probe_json(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, dict[str, Any]]:
    """`clipswap-video probe FILE --json`: exit code, stderr and the parsed object."""
    code = main(["probe", str(path), "--json"])
    captured = capsys.readouterr()
    return code, captured.err, json.loads(captured.out) if code == 0 else {}


def _encode_video(
    container: av.container.OutputContainer,
    video: av.VideoStream,
    frames: int,
    size: tuple[int, int] = SIZE,
) -> None:
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(picture(index, *size), format="rgb24")
        frame = frame.reformat(format=video.pix_fmt)
        frame.pts, frame.time_base = index, Fraction(1, 30)
        container.mux(video.encode(frame))
    container.mux(video.encode(None))


def _add_video(
    container: av.container.OutputContainer, size: tuple[int, int] = SIZE
) -> av.VideoStream:
    video = container.add_stream("libx264", rate=30)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    video.time_base = video.codec_context.time_base = Fraction(1, 30)
    video.options = {"preset": "ultrafast", "crf": "20"}
    return video


def write_layout(path: Path, kinds: Sequence[str], *, title: str | None = None) -> Path:
    """A clip whose streams come in the order of `kinds` ("video", or an audio codec)."""
    with av.open(str(path), "w", metadata_errors="surrogateescape") as container:
        streams = [
            _add_video(container) if kind == "video" else add_audio(container, kind)
            for kind in kinds
        ]
        if title is not None:
            container.metadata["title"] = title
            for stream in streams:
                stream.metadata["title"] = SENAL if stream.type == "audio" else title
        for stream in streams:
            if stream.type == "video":
                _encode_video(container, stream, FRAMES)
            else:
                write_audio(container, stream, FRAMES / 30)
    return path


def decoded_count(path: Path, index: int = 0) -> int:
    with av.open(str(path), metadata_errors="surrogateescape") as container:
        return sum(1 for _ in container.decode(container.streams.video[index]))


def first_matrix(path: Path) -> tuple[int, ...] | None:
    with av.open(str(path)) as container:
        return display_matrix(next(container.decode(video=0)))


# 1. Tags whose bytes are not UTF-8 (Latin-1 / CP-1252 from old tools)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_latin1_tags_probe(capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str) -> None:
    clip = write_layout(tmp_path / f"in{suffix}", ["video", "aac"], title=CAFE)
    assert b"Caf\xe9" in clip.read_bytes() and b"Se\xf1al" in clip.read_bytes()
    code, err, info = probe_json(capsys, clip)
    assert code == 0, err
    assert [s["kind"] for s in info["streams"]] == ["video", "audio"]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_latin1_tags_keep_their_bytes(
    cli: CliRun, source_image: Path, tmp_path: Path, suffix: str
) -> None:
    clip = write_layout(tmp_path / f"in{suffix}", ["video", "aac"], title=CAFE)
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == 0, err
    out = tmp_path / f"out{suffix}"
    with av.open(str(out), metadata_errors="surrogateescape") as container:
        assert container.metadata["title"] == CAFE  # the bytes b"Caf\xe9", unchanged
        audio = container.streams.audio[0].metadata
        assert audio.get("title", audio.get("name")) == SENAL  # MP4 reads a title back as name
    assert decoded_count(out) == FRAMES


# 2. The video is not the first stream


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_video_after_audio_is_found_and_audio_copied(
    cli: CliRun, source_image: Path, tmp_path: Path, suffix: str
) -> None:
    clip = write_layout(tmp_path / f"in{suffix}", ["aac", "video"])
    assert [s.type for s in av.open(str(clip)).streams] == ["audio", "video"]
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == 0, err
    out = tmp_path / f"out{suffix}"
    assert frame_times(out) == frame_times(clip) and len(frame_times(out)) == FRAMES
    assert packets(out, "audio") == packets(clip, "audio")
    # the writer puts the processed video first, then the copied streams
    assert [s.kind for s in probe(out).streams] == ["video", "audio"]


# 3. Two video streams (a main camera and a second angle or a preview)


def write_two_videos(path: Path, *, default: int | None) -> Path:
    """96x64 (stream 0) and 64x48 (stream 1); `default` marks one default, None leaves both."""
    with av.open(str(path), "w") as container:
        first, second = _add_video(container, SIZE), _add_video(container, (64, 48))
        if default is not None:
            first.disposition = av.stream.Disposition(0)
            second.disposition = av.stream.Disposition(0)
            (first, second)[default].disposition = av.stream.Disposition.default
        _encode_video(container, first, FRAMES, SIZE)
        _encode_video(container, second, FRAMES, (64, 48))
    return path


def test_two_video_streams_first_processed_second_kept(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_two_videos(tmp_path / "in.mkv", default=None)
    code, err = swap(cli, source_image, clip, tmp_path / "out.mkv")
    assert code == 0, err
    out = tmp_path / "out.mkv"
    with av.open(str(out)) as container:
        sizes = [(s.width, s.height) for s in container.streams.video]
    assert sizes[0] == SIZE and decoded_count(out, 0) == FRAMES
    # The second video stream is copied packet for packet, not dropped.
    assert sizes[1:] == [(64, 48)]
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        second_in = [bytes(p) for p in a.demux(a.streams.video[1]) if p.size]
        second_out = [bytes(p) for p in b.demux(b.streams.video[1]) if p.size]
    assert second_out == second_in and len(second_in) == FRAMES


def test_two_video_streams_the_default_one_is_processed(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_two_videos(tmp_path / "in.mkv", default=1)
    with av.open(str(clip)) as container:
        flags = [bool(s.disposition & av.stream.Disposition.default) for s in container.streams]
    assert flags == [False, True]
    code, err = swap(cli, source_image, clip, tmp_path / "out.mkv")
    assert code == 0, err
    assert probe(tmp_path / "out.mkv").video.width == 64  # the default stream was processed


# 4. Cover art (a picture stream with the attached_pic disposition)


def jpeg_bytes() -> bytes:
    context = av.CodecContext.create("mjpeg", "w")
    context.width = context.height = 32
    context.pix_fmt, context.time_base = "yuvj420p", Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
    frame = frame.reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in context.encode(frame) + context.encode(None))


def write_with_cover(path: Path) -> Path:
    """mp4: a cover stream (`covr`) with attached_pic; mkv: an image/jpeg attachment,
    which FFmpeg reads back as an attached_pic video stream."""
    with av.open(str(path), "w") as container:
        video = _add_video(container)
        if path.suffix == ".mkv":
            container.add_attachment("cover.jpg", "image/jpeg", jpeg_bytes())
        else:
            cover = container.add_stream("mjpeg")
            cover.width = cover.height = 32
            cover.pix_fmt = "yuvj420p"
            cover.time_base = cover.codec_context.time_base = Fraction(1, 90000)
            cover.disposition = av.stream.Disposition.attached_pic
            packet = av.Packet(jpeg_bytes())
            packet.stream, packet.pts, packet.dts = cover, 0, 0
            container.mux(packet)
        _encode_video(container, video, FRAMES)
    return path


def cover_pictures(path: Path) -> list[bytes]:
    """The picture of every attached_pic stream (FFmpeg demuxes it as one packet)."""
    with av.open(str(path)) as container:
        covers = [
            s for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic
        ]
        return [bytes(p) for p in container.demux(covers) if p.size] if covers else []


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_cover_art_is_not_the_video(
    cli: CliRun, source_image: Path, tmp_path: Path, suffix: str
) -> None:
    clip = write_with_cover(tmp_path / f"in{suffix}")
    with av.open(str(clip)) as container:
        kinds = [
            (s.codec_context.name, bool(s.disposition & av.stream.Disposition.attached_pic))
            for s in container.streams.video
        ]
    assert sorted(kinds) == [("h264", False), ("mjpeg", True)]
    assert probe(clip).video.codec == "h264"
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == 0, err
    video = probe(tmp_path / f"out{suffix}").video
    assert (video.width, video.height) == SIZE
    assert decoded_count(tmp_path / f"out{suffix}") == FRAMES


@pytest.mark.parametrize(
    "suffix",
    [
        ".mp4",
        ".mkv",
    ],
)
def test_cover_art_is_kept(cli: CliRun, source_image: Path, tmp_path: Path, suffix: str) -> None:
    clip = write_with_cover(tmp_path / f"in{suffix}")
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == 0, err
    assert "dropped" not in err, err
    assert cover_pictures(tmp_path / f"out{suffix}") == cover_pictures(clip) == [jpeg_bytes()]


# 5. One frame, and no duration at all


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_one_frame_video(cli: CliRun, source_image: Path, tmp_path: Path, suffix: str) -> None:
    clip = write_clip(tmp_path / f"in{suffix}", width=SIZE[0], height=SIZE[1], frames=1)
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == 0, err
    assert frame_times(tmp_path / f"out{suffix}") == [Fraction(0)]


def write_zero_duration(path: Path) -> Path:
    """One frame whose packet lasts 0 and no frame rate: Matroska stores
    DURATION 00:00:00.000 and the container reports no duration."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264")
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        video.codec_context.framerate = Fraction(0, 1)
        video.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(picture(0, *SIZE), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = 0, Fraction(1, 1000)
        for packet in video.encode(frame) + video.encode(None):
            packet.duration = 0
            container.mux(packet)
    return path


def test_zero_duration_video(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    clip = write_zero_duration(tmp_path / "in.mkv")
    with av.open(str(clip)) as container:
        assert container.duration is None
        assert container.streams.video[0].metadata["DURATION"] == "00:00:00.000000000"
    code, err = swap(cli, source_image, clip, tmp_path / "out.mkv")
    assert code == 0, err
    assert frame_times(tmp_path / "out.mkv") == [Fraction(0)]


# 6. A stream that starts mid-GOP: leading frames that cannot be decoded


def write_cut(path: Path, tmp_path: Path, *, open_gop: bool) -> Path:
    """24 frames of x264 (keyint 8, 3 B-frames) remuxed from a later packet:
    with `open_gop`, from the second keyframe, a non-IDR I-frame whose leading
    B-frames reference the missing previous GOP; else from the third packet,
    so the first packets are B/P-frames without their I-frame."""
    full = tmp_path / "full.mkv"
    params = "keyint=8:min-keyint=8:bframes=3:b-adapt=0:scenecut=0"
    with av.open(str(full), "w") as container:
        video = _add_video(container)
        video.options = {"preset": "ultrafast", "x264-params": f"open-gop={int(open_gop)}:{params}"}
        _encode_video(container, video, 24)
    with av.open(str(full)) as source, av.open(str(path), "w") as cut:
        stream = source.streams.video[0]
        copy = cut.add_stream_from_template(stream)
        all_packets = [p for p in source.demux(stream) if p.size]
        keyframes = [i for i, p in enumerate(all_packets) if p.is_keyframe]
        for packet in all_packets[keyframes[1] if open_gop else 2 :]:
            packet.stream = copy
            cut.mux(packet)
    return path


@pytest.mark.parametrize("open_gop", [True, False], ids=["open-gop", "mid-gop"])
def test_leading_undecodable_frames(
    cli: CliRun, source_image: Path, tmp_path: Path, open_gop: bool
) -> None:
    clip = write_cut(tmp_path / "in.mkv", tmp_path, open_gop=open_gop)
    with av.open(str(clip)) as container:
        sent = sum(1 for p in container.demux(video=0) if p.size)
    decodable = frame_times(clip)  # what FFmpeg itself shows: from the first keyframe on
    assert len(decodable) < sent
    code, err = swap(cli, source_image, clip, tmp_path / "out.mkv")
    assert code == 0, err
    # Every decodable frame is kept, at its own time; the rest is not cut short.
    assert frame_times(tmp_path / "out.mkv") == decodable
    # And the job says what it could not decode.
    lost = sent - len(decodable)
    assert f"the first {lost} frame(s) cannot be decoded" in err


# 7. Rotation 270 and a mirrored display matrix


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
@pytest.mark.parametrize("matrix", ["rotate-270", "hflip"])
def test_display_matrix_kept(
    cli: CliRun, source_image: Path, tmp_path: Path, suffix: str, matrix: str
) -> None:
    clip = tmp_path / f"in{suffix}"
    with av.open(str(clip), "w") as container:
        video = _add_video(container)
        if matrix == "hflip":
            video.set_display_matrix(HFLIP)
        else:
            video.set_display_rotation(270)
        _encode_video(container, video, FRAMES)
    before = first_matrix(clip)
    assert before == (HFLIP if matrix == "hflip" else (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30))
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == 0, err
    assert first_matrix(tmp_path / f"out{suffix}") == before


# 8. HDR: 10-bit HEVC, PQ transfer, BT.2020


@pytest.mark.parametrize("codec", [None, "libx265"], ids=["default-encoder", "libx265"])
def test_hdr_stays_ten_bit_with_its_colour_tags(
    cli: CliRun, source_image: Path, tmp_path: Path, codec: str | None
) -> None:
    clip = write_clip(
        tmp_path / "in.mp4",
        width=SIZE[0],
        height=SIZE[1],
        frames=FRAMES,
        codec="libx265",
        pix_fmt="yuv420p10le",
        color=HDR,
    )
    assert probe(clip).video.codec == "hevc"
    flags = ["--codec", codec] if codec else []
    code, err = swap(cli, source_image, clip, tmp_path / "out.mp4", *flags)
    assert code == 0, err
    video = probe(tmp_path / "out.mp4").video
    assert (video.pix_fmt, video.bit_depth) == ("yuv420p10le", 10)
    assert {key: getattr(video, key) for key in HDR} == HDR
    assert decoded_count(tmp_path / "out.mp4") == FRAMES


# 9. Audio the output container refuses, or takes


@pytest.mark.parametrize(
    "suffix",
    [
        ".mkv",
        ".mov",
    ],
)
def test_pcm_s16le_into_mp4_is_copied_or_transcoded_with_a_note(
    cli: CliRun, source_image: Path, tmp_path: Path, suffix: str
) -> None:
    """FFmpeg 8's mp4 muxer takes PCM (ISO/IEC 23003-5) when the channel layout
    is known; either the packets arrive unchanged or a note says they became AAC."""
    clip = write_layout(tmp_path / f"in{suffix}", ["video", "pcm_s16le"])
    code, err = swap(cli, source_image, clip, tmp_path / "out.mp4")
    assert code == 0, err
    with av.open(str(tmp_path / "out.mp4")) as container:
        codecs = [s.codec_context.name for s in container.streams.audio]
    if codecs == ["pcm_s16le"]:
        assert packets(tmp_path / "out.mp4", "audio") == packets(clip, "audio")
    else:
        assert codecs == ["aac"]
        assert "transcoding audio stream #1 (pcm_s16le, 2 ch, 48000 Hz" in err
        assert "to aac at 256 kb/s: mp4 cannot hold pcm_s16le" in err
    assert decoded_count(tmp_path / "out.mp4") == FRAMES


def test_audio_mp4_refuses_is_transcoded_or_dropped_with_a_note(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    """G.711 mu-law (security cameras) in .mov: mp4's muxer refuses it."""
    clip = write_layout(tmp_path / "in.mov", ["video", "pcm_mulaw"])
    code, err = swap(cli, source_image, clip, tmp_path / "out.mp4")
    assert code == 0, err
    assert "transcoding audio stream #1 (pcm_mulaw, 2 ch, 48000 Hz, 768 kb/s) to aac" in err
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
    code, err = swap(cli, source_image, clip, tmp_path / "drop.mp4", "--audio", "drop")
    assert code == 0, err
    assert "dropped audio stream #1 (pcm_mulaw): mp4 cannot hold it; .mkv keeps it" in err
    assert [s.kind for s in probe(tmp_path / "drop.mp4").streams] == ["video"]
    assert decoded_count(tmp_path / "drop.mp4") == FRAMES


# 10. An extension that lies


def test_matroska_named_mp4_is_read_by_its_content(
    cli: CliRun, capsys: pytest.CaptureFixture[str], source_image: Path, tmp_path: Path
) -> None:
    real = write_layout(tmp_path / "real.mkv", ["video", "aac"])
    clip = tmp_path / "in.mp4"
    shutil.move(real, clip)
    assert clip.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: Matroska
    code, err, info = probe_json(capsys, clip)
    assert code == 0 and str(info["format_name"]).startswith("matroska")
    code, err = swap(cli, source_image, clip, tmp_path / "out.mp4")
    assert code == 0, err
    assert frame_times(tmp_path / "out.mp4") == frame_times(clip)
    assert packets(tmp_path / "out.mp4", "audio") == packets(clip, "audio")
