"""Small media files with exactly known properties, written with plain PyAV.

The project's own writer is never used here: fixtures must not share the
code under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SUBTITLES = [(0.2, 0.5, "first line"), (0.6, 0.3, "second line")]  # start s, duration s, text


def picture(index: int, width: int, height: int) -> np.ndarray:
    """A frame that differs from its neighbours: a gradient and a moving bar."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    image[..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    image[..., 2] = (index * 16) % 256
    bar = (index * 7) % max(width - 8, 1)
    image[:, bar : bar + 8] = 255
    return image


def write_clip(
    path: Path,
    *,
    width: int = 160,
    height: int = 96,
    frames: int = 20,
    fps: int = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    time_base: Fraction | None = None,
    pts: Sequence[int] | None = None,
    rotation: int | None = None,
    color: dict[str, int] | None = None,
    sample_aspect_ratio: Fraction | None = None,
    audio: Sequence[str] = (),
    subtitles: bool = False,
    klv_data: bool = False,
    attachment: bytes | None = None,
    chapters: Sequence[str] = (),
) -> Path:
    """Writes a clip; `pts` (in `time_base`) makes it variable frame rate."""
    time_base = time_base or Fraction(1, fps)
    stamps = list(pts) if pts is not None else list(range(frames))
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if codec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "20"}
        for key, value in (color or {}).items():
            setattr(video.codec_context, key, value)
        if rotation is not None:
            video.set_display_rotation(rotation)
        if sample_aspect_ratio is not None:  # anamorphic: pixels wider than tall
            video.codec_context.sample_aspect_ratio = sample_aspect_ratio
        audio_streams = [add_audio(container, name) for name in audio]
        subtitle = container.add_mux_stream("subrip") if subtitles else None
        data = container.add_data_stream("klv") if klv_data else None
        if chapters:
            container.set_chapters(_chapters(chapters, len(stamps) / fps))
        if attachment is not None:
            container.add_attachment("font.ttf", "application/x-truetype-font", attachment)
        duration_s = float((stamps[-1] + 1) * time_base)
        _write_video(container, video, stamps, width, height, color or {})
        for stream in audio_streams:
            write_audio(container, stream, duration_s)
        if subtitle is not None:
            _write_subtitles(container, subtitle)
        if data is not None:
            _write_klv(container, data, duration_s)
    return path


def _write_video(container, video, stamps, width, height, color) -> None:  # type: ignore[no-untyped-def]
    for index, stamp in enumerate(stamps):
        frame = av.VideoFrame.from_ndarray(picture(index, width, height), format="rgb24")
        frame = frame.reformat(format=video.pix_fmt)
        for key, value in color.items():
            setattr(frame, key, value)
        frame.pts, frame.time_base = stamp, video.codec_context.time_base
        container.mux(video.encode(frame))
    container.mux(video.encode(None))


def add_audio(container: av.container.OutputContainer, codec: str) -> av.AudioStream:
    stream = container.add_stream(codec, rate=48000)
    stream.layout = "stereo"
    return stream


def write_audio(container, stream, seconds: float) -> None:  # type: ignore[no-untyped-def]
    rate, size = 48000, stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    total = int(seconds * rate)
    for start in range(0, total, size):
        t = (np.arange(start, start + size) / rate).astype(np.float32)
        tone = 0.2 * np.sin(2 * np.pi * 440 * t)
        samples = np.stack([tone, tone])
        if fmt.startswith("s16"):
            data = (samples * 32767).astype(np.int16)
            data = data.T.reshape(1, -1) if not fmt.endswith("p") else data
        else:
            data = samples if fmt.endswith("p") else samples.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _write_subtitles(container, stream) -> None:  # type: ignore[no-untyped-def]
    for start, duration, text in SUBTITLES:
        packet = av.Packet(text.encode())
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = int(start * 1000)
        packet.duration = int(duration * 1000)
        container.mux(packet)


def _chapters(titles: Sequence[str], seconds: float) -> list[dict[str, object]]:
    """Equal-length chapters over `seconds`, in milliseconds."""
    step = int(seconds * 1000) // len(titles)
    return [
        {
            "id": i + 1,
            "start": i * step,
            "end": (i + 1) * step,
            "time_base": Fraction(1, 1000),
            "metadata": {"title": title},
        }
        for i, title in enumerate(titles)
    ]


def _write_klv(container, stream, seconds: float) -> None:  # type: ignore[no-untyped-def]
    for tenth in range(int(seconds * 10)):  # a metadata packet every 0.1 s
        packet = av.Packet(b"\x06\x0e\x2b\x34" + f"frame-metadata-{tenth}".encode())
        packet.stream, packet.time_base = stream, Fraction(1, 90000)
        packet.pts = packet.dts = tenth * 9000
        container.mux(packet)


CLOSED_GOP = "keyint=10:min-keyint=10:scenecut=0:bframes=2:b-adapt=0"
OPEN_GOP = "keyint=10:min-keyint=10:scenecut=0:bframes=3:b-adapt=0:open-gop=1"


def write_gop_clip(
    path: Path,
    x264_params: str,
    *,
    frames: int = 60,
    fps: int = 10,
    pts: list[int] | None = None,
    size: tuple[int, int] = (64, 48),
    audio: bool = False,
) -> Path:
    """A clip whose keyframes are exactly every 10 frames, with B-frames; `pts`
    in milliseconds make it variable frame rate."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "x264-params": x264_params}
        sound = add_audio(container, "aac") if audio else None
        if pts is not None:  # milliseconds
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(index, *size), format="rgb24")
            frame.pts = pts[index] if pts is not None else index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            write_audio(container, sound, frames / fps)
    return path


def packets(path: Path, kind: str) -> list[tuple[int, bytes]]:
    """(stream position among streams of `kind`, payload) of every packet of that kind."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        order = {s.index: i for i, s in enumerate(streams)}
        return [(order[p.stream_index], bytes(p)) for p in container.demux(streams) if p.size]


def frame_times(path: Path) -> list[Fraction]:
    """Presentation time of every decoded video frame, exactly."""
    with av.open(str(path)) as container:
        return [f.pts * f.time_base for f in container.decode(video=0)]


def rgb_frames(path: Path) -> list[np.ndarray]:
    """Every decoded video frame as RGB uint8."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
