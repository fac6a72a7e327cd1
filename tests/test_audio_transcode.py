"""Audio the output container cannot hold is transcoded once, in sync, and the
plan of what each stream gets is the one the copier follows."""

from __future__ import annotations

import io
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import CliRun

from clipswap_video.config_sections import AudioSettings
from clipswap_video.errors import ExitCode
from clipswap_video.media import probe
from clipswap_video.media.audio import (
    AUDIO_ENCODERS,
    AudioTranscoder,
    audio_bit_rate,
    audio_encoder_for,
    audio_target,
)
from clipswap_video.media.join import SegmentJoiner
from clipswap_video.media.output_file import OutputOptions
from clipswap_video.media.stream_plan import plan_streams
from media_fixtures import frame_times, packets, picture, write_clip

AAC_FRAME = 1024 / 48000  # the longest audio frame here (Opus: 960 samples)
VP9 = ("--codec", "libvpx-vp9")  # WebM takes no H.264


def write_tone_clip(
    path: Path,
    codec: str,
    *,
    layout: str = "stereo",
    frames: int = 30,
    fps: int = 30,
    tags: dict[str, str] | None = None,
) -> Path:
    """A clip with one audio stream of any codec, layout and sample format
    (media_fixtures' write_audio writes stereo 16-bit or float only)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.options = {"preset": "ultrafast"}
        audio = container.add_stream(codec, rate=48000)
        audio.layout = layout
        audio.metadata.update(tags or {})
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(index, 64, 48), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        _write_tone(container, audio, frames / fps)
    return path


def _write_tone(container, stream, seconds: float) -> None:  # type: ignore[no-untyped-def]
    fmt, layout = stream.codec_context.format, stream.codec_context.layout
    size = stream.codec_context.frame_size or 1024
    for start in range(0, int(seconds * 48000), size):
        tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + size) / 48000)
        samples = np.repeat(tone[None], layout.nb_channels, axis=0)
        if fmt.name.startswith("s"):  # integers: full scale of the format
            samples = samples * (2 ** (fmt.bits - 1) - 1)
        dtype = {"s16": np.int16, "s32": np.int32}.get(fmt.name.rstrip("p"), np.float32)
        data = samples.astype(dtype)
        data = data if fmt.is_planar else data.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format=fmt.name, layout=layout.name
        )
        frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def audio_span(path: Path) -> tuple[str, int, float, float]:
    """(codec, channels, start s, end s) of the first audio stream, as a player
    decodes it: encoder priming hidden by the container's edit list or codec delay."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [(f.pts * f.time_base, f.samples, f.sample_rate) for f in container.decode(stream)]
        codec, channels = stream.codec_context.name, stream.codec_context.channels
    start = float(frames[0][0])
    end = float(frames[-1][0]) + frames[-1][1] / frames[-1][2]
    return codec, channels, start, end


def same_times(written: list[Fraction], read: list[Fraction]) -> bool:
    """Frame times equal to WebM's clock, 1 ms."""
    pairs = zip(written, read, strict=False)
    return len(written) == len(read) and all(abs(a - b) <= 0.001 for a, b in pairs)


def swap(cli: CliRun, source: Path, clip: Path, output: Path, *flags: str) -> tuple[int, str]:
    return cli(source, clip, output, "--swapper", "none", *flags)


def test_aac_in_mp4_to_webm_becomes_opus_in_sync(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=45, audio=["aac"])
    out = tmp_path / "out.webm"
    code, err = swap(cli, source_image, clip, out, *VP9)
    assert code == ExitCode.OK, err
    note = (
        r"transcoding audio stream #1 \(aac, 2 ch, 48000 Hz, (\d+) kb/s\) to libopus at (\d+) kb/s"
    )
    found = re.search(note + ": webm cannot hold aac", err)
    assert found and found[1] == found[2], err  # the source's bit rate, within Opus's range
    codec, channels, start, end = audio_span(out)
    _, _, source_start, source_end = audio_span(clip)
    assert (codec, channels) == ("opus", 2)
    assert start == pytest.approx(source_start, abs=AAC_FRAME)
    assert end - start == pytest.approx(source_end - source_start, abs=AAC_FRAME)
    assert same_times(frame_times(out), frame_times(clip))  # every frame, at its time


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_containers_that_hold_aac_copy_it_packet_for_packet(
    cli: CliRun, source_image: Path, tmp_path: Path, suffix: str
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=30, audio=["aac"])
    code, err = swap(cli, source_image, clip, tmp_path / f"out{suffix}")
    assert code == ExitCode.OK, err
    assert "transcoding" not in err
    assert packets(tmp_path / f"out{suffix}", "audio") == packets(clip, "audio")


def test_pcm_s24_in_mkv_to_mp4_becomes_aac(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    clip = write_tone_clip(tmp_path / "in.mkv", "pcm_s24le")
    out = tmp_path / "out.mp4"
    code, err = swap(cli, source_image, clip, out)
    assert code == ExitCode.OK, err
    assert "(pcm_s24le, 2 ch, 48000 Hz, 2304 kb/s) to aac at 256 kb/s: mp4 cannot hold" in err
    codec, channels, start, end = audio_span(out)
    _, _, source_start, source_end = audio_span(clip)
    assert (codec, channels) == ("aac", 2)
    assert start == pytest.approx(source_start, abs=AAC_FRAME)  # the priming edited out
    assert end == pytest.approx(source_end, abs=AAC_FRAME)


def test_audio_drop_to_webm_leaves_it_out_with_the_old_note(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=10, audio=["aac"])
    out = tmp_path / "out.webm"
    code, err = swap(cli, source_image, clip, out, *VP9, "--audio", "drop")
    assert code == ExitCode.OK, err
    assert "dropped audio stream #1 (aac): webm cannot hold it; .mkv keeps it" in err
    assert [s.kind for s in probe(out).streams] == ["video"]


def test_a_range_to_webm_keeps_the_audio_with_the_video(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=60, audio=["aac"], width=64, height=48)
    out = tmp_path / "out.webm"
    code, err = swap(cli, source_image, clip, out, *VP9, "--start", "0.5", "--duration", "1")
    assert code == ExitCode.OK, err
    times = frame_times(out)
    assert len(times) == 30 and times[0] == 0
    video_end = float(times[-1]) + 1 / 30
    codec, _, start, end = audio_span(out)
    assert codec == "opus"
    assert 0 <= start < AAC_FRAME and video_end <= end < video_end + AAC_FRAME


def test_six_channels_to_webm_stay_six(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    """libopus takes 5.1 (mapping family 1): no downmix into WebM."""
    tags = {"language": "fra", "title": "commentary"}
    clip = write_tone_clip(tmp_path / "in.mkv", "aac", layout="5.1", tags=tags)
    out = tmp_path / "out.webm"
    code, err = swap(cli, source_image, clip, out, *VP9)
    assert code == ExitCode.OK, err
    assert "(aac, 6 ch, 48000 Hz" in err and "downmixed" not in err
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.codec_context.channels) == ("opus", 6)
        assert {key: stream.metadata.get(key) for key in tags} == tags  # as a copy keeps them


def test_a_bit_rate_the_encoder_refuses_is_a_bad_setting(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=5, audio=["aac"])
    out = tmp_path / "out.webm"
    code, err = swap(cli, source_image, clip, out, *VP9, "--set", "audio.bitrate=1500000")
    assert code == ExitCode.BAD_CONFIG_VALUE
    assert "audio.bitrate = 1500000 is outside what libopus takes for 2 channels" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4"]


def test_an_audio_packet_that_cannot_be_decoded_is_damage(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mkv", frames=30, audio=["aac"])
    data = bytearray(clip.read_bytes())
    payload = packets(clip, "audio")[10][1]
    at = data.find(payload)
    data[at : at + len(payload)] = b"\xff" * len(payload)  # garbage to the AAC decoder
    clip.write_bytes(bytes(data))
    out = tmp_path / "out.webm"
    code, err = swap(cli, source_image, clip, out, *VP9)
    assert code == ExitCode.CORRUPT_INPUT and "audio stream #1 cannot be decoded at" in err
    assert not out.exists()
    code, err = swap(cli, source_image, clip, out, *VP9, "--tolerate-errors")
    assert code == ExitCode.OK and "skipped 1 damaged audio/subtitle packet(s)" in err
    assert audio_span(out)[0] == "opus"


def test_more_channels_than_the_encoder_takes_are_downmixed(tmp_path: Path) -> None:
    clip = write_tone_clip(tmp_path / "in.mkv", "pcm_s16le", layout="5.1", frames=3)
    with av.open(str(clip)) as container:
        target = audio_target(container.streams.audio[0], "avi", AudioSettings())
    assert not isinstance(target, str)
    assert (target.encoder, target.layout, target.downmixed) == ("libmp3lame", "stereo", True)
    assert target.describe() == "libmp3lame at 320 kb/s, downmixed to stereo"


def test_the_plan_is_what_each_output_gets(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=10, audio=["aac"])
    info = probe(clip)
    auto, drop = AudioSettings(), AudioSettings(mode="drop")
    (webm,) = plan_streams(info, "webm", auto)
    assert (webm.index, webm.kind, webm.codec, webm.action) == (1, "audio", "aac", "transcode")
    assert webm.target is not None and webm.target.encoder == "libopus"
    kept = round(info_bit_rate(clip), -3)  # the source's, within Opus's 96-256 kb/s
    assert webm.target.bit_rate == kept and webm.target.sample_rate == 48000
    assert webm.describe() == (
        f"#1 audio aac: transcode to libopus at {kept // 1000} kb/s (webm cannot hold aac)"
    )
    assert [plan.action for plan in plan_streams(info, "matroska", auto)] == ["copy"]
    assert [plan.action for plan in plan_streams(info, "mp4", auto)] == ["copy"]
    (dropped,) = plan_streams(info, "webm", drop)
    assert dropped.describe() == "#1 audio aac: drop (webm cannot hold it; .mkv keeps it)"
    fixed = plan_streams(info, "webm", AudioSettings(bitrate=64_000))[0].target
    assert fixed is not None and fixed.bit_rate == 64_000

    pcm = probe(write_tone_clip(tmp_path / "pcm.mkv", "pcm_s24le", frames=3))
    (mp4,) = plan_streams(pcm, "mp4", auto)
    assert mp4.action == "transcode" and mp4.target is not None
    assert (mp4.target.encoder, mp4.target.bit_rate) == ("aac", 256_000)
    assert [plan.action for plan in plan_streams(pcm, "matroska", auto)] == ["copy"]

    subtitled = probe(write_clip(tmp_path / "sub.mkv", frames=10, subtitles=True))
    (subtitles,) = plan_streams(subtitled, "mp4", auto)
    assert subtitles.describe() == "#1 subtitle srt: drop (mp4 cannot hold it; .mkv keeps it)"


def info_bit_rate(path: Path) -> int:
    with av.open(str(path)) as container:
        return int(container.streams.audio[0].codec_context.bit_rate)


def test_the_encoder_and_bit_rate_rules() -> None:
    assert audio_encoder_for("webm", lossless=True, bits=16) == "libopus"
    assert audio_encoder_for("matroska", lossless=True, bits=24) == "flac"
    assert audio_encoder_for("matroska", lossless=False, bits=32) == "libopus"
    assert audio_encoder_for("wav", lossless=True, bits=16) == "pcm_s16le"
    assert audio_encoder_for("wav", lossless=True, bits=24) == "pcm_s24le"
    assert audio_encoder_for("mxf", lossless=False, bits=16) is None
    assert audio_bit_rate("aac", 2, 96_000, lossless=False) == 128_000  # the floor
    assert audio_bit_rate("aac", 2, 200_000, lossless=False) == 200_000  # the source's
    assert audio_bit_rate("libopus", 2, 448_000, lossless=False) == 256_000  # the ceiling
    assert audio_bit_rate("libopus", 6, None, lossless=False) == 576_000  # unknown
    assert audio_bit_rate("aac", 2, 1_536_000, lossless=True) == 256_000  # PCM, FLAC
    assert audio_bit_rate("flac", 2, 1_536_000, lossless=True) is None


@pytest.mark.parametrize("muxer", sorted(AUDIO_ENCODERS))
def test_every_muxer_takes_its_encoder(tmp_path: Path, muxer: str) -> None:
    """The table's answer goes into its muxer, from a source it cannot hold."""
    clip = write_tone_clip(tmp_path / "in.mkv", "pcm_s16le", frames=3)
    with av.open(str(clip)) as source, av.open(io.BytesIO(), "w", format=muxer) as output:
        stream = source.streams.audio[0]
        target = audio_target(stream, muxer, AudioSettings())
        assert not isinstance(target, str), target
        transcoder = AudioTranscoder(stream, output, target)
        output.start_encoding()
        for packet in source.demux(stream):
            if packet.size:
                output.mux(transcoder.transcode(packet))
        output.mux(transcoder.flush())


def test_a_split_job_into_webm_transcodes_at_the_join(tmp_path: Path) -> None:
    """The segment joiner copies the input's other streams as a whole job does."""
    clip = write_clip(tmp_path / "in.mp4", frames=20, codec="libvpx-vp9", audio=["aac"])
    out = tmp_path / "out.webm"
    with SegmentJoiner(
        out, source=probe(clip), first_segment=clip, options=OutputOptions("x")
    ) as joiner:
        joiner.add(clip)  # its own video as the one segment
        joiner.finish()
    assert joiner.transcoded_streams[0].startswith("transcoding audio stream #1 (aac")
    assert audio_span(out)[0] == "opus"
    assert same_times(frame_times(out), frame_times(clip))


def test_a_stream_that_changes_its_layout_midway_is_transcoded_whole(tmp_path: Path) -> None:
    """Broadcast audio switches between stereo and 5.1: ADTS AAC, one part of each."""
    parts = []
    for layout in ["stereo", "5.1"]:
        part = io.BytesIO()
        with av.open(part, "w", format="adts") as container:
            stream = container.add_stream("aac", rate=48000)
            stream.layout = layout
            _write_tone(container, stream, 0.5)
        parts.append(part.getvalue())
    (tmp_path / "in.aac").write_bytes(b"".join(parts))
    with av.open(str(tmp_path / "in.aac")) as source:
        with av.open(str(tmp_path / "out.webm"), "w") as output:
            stream = source.streams.audio[0]
            target = audio_target(stream, "webm", AudioSettings())
            assert not isinstance(target, str) and target.layout == "stereo"  # the first part's
            transcoder = AudioTranscoder(stream, output, target)
            output.start_encoding()
            for packet in source.demux(stream):
                if packet.size:
                    output.mux(transcoder.transcode(packet))
            output.mux(transcoder.flush())
    assert _samples(tmp_path / "out.webm") == _samples(tmp_path / "in.aac")


def _samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))
