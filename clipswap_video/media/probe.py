"""What is in a media file: streams, codecs, geometry, timing and colour tags.

`probe()` reads the container header and decodes one video frame (rotation
lives in the display-matrix side data that FFmpeg attaches to frames). With
`count_frames=True` it also demuxes (never decodes) the video packets to count
frames exactly and to tell constant from variable frame rate. An image
sequence (a pattern, a glob or a folder: media/sequence.py) is described by
media/sequence_probe.py as a video of one stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.video.stream
from av.sidedata.sidedata import Type

from clipswap_video.config_sections import SequenceSettings
from clipswap_video.errors import CorruptInputError, NoVideoStreamError
from clipswap_video.media._open import open_input, reading
from clipswap_video.media.info import MediaInfo, StreamInfo, VideoInfo
from clipswap_video.media.sequence import is_sequence_input
from clipswap_video.media.sequence_probe import probe_sequence
from clipswap_video.media.tags import count, matrix_entries, rotation_degrees

VIDEO_SUFFIXES = frozenset(
    ".3gp .avi .flv .m2ts .m4v .mkv .mov .mp4 .mpeg .mpg .mts .mxf .ts .webm .wmv".split()
)
"""File extensions taken for videos when a folder is searched (batch, training)."""


def probe(
    path: Path, *, count_frames: bool = False, sequence: SequenceSettings | None = None
) -> MediaInfo:
    """Describes `path`; raises ClipswapError for missing, unreadable or video-less
    files. An image sequence's frames are always counted; `sequence` gives its rate."""
    if is_sequence_input(path):
        return probe_sequence(path, sequence or SequenceSettings())
    with open_input(path) as container, reading(path, "reading its stream information"):
        stream = select_video_stream(container, path)
        video = _video_info(container, stream, path)
        if count_frames:
            video = _with_counted_frames(container, stream, video)
        return MediaInfo(
            path=path,
            format_name=container.format.name,
            duration_s=_seconds(container.duration, Fraction(1, av.time_base)),
            bit_rate=container.bit_rate or None,
            metadata=dict(container.metadata),
            streams=tuple(_stream_info(s) for s in container.streams),
            video=video,
            chapters=tuple(container.chapters()),
        )


def select_video_stream(
    container: av.container.InputContainer, path: Path
) -> av.video.stream.VideoStream:
    """The first real video stream marked default, else the first real one
    (cover-art pictures are not video); the others are copied like audio."""
    videos = [
        stream
        for stream in container.streams.video
        if not stream.disposition & av.stream.Disposition.attached_pic
    ]
    for stream in videos:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    if videos:
        return videos[0]
    raise NoVideoStreamError(
        f"input video {path} has no video stream (streams: {_kinds(container)})"
    )


def _kinds(container: av.container.InputContainer) -> str:
    return ", ".join(f"#{s.index} {s.type}" for s in container.streams) or "none"


def _video_info(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> VideoInfo:
    context = stream.codec_context
    first_frame = _first_frame(container, stream, path)
    pix_fmt = context.pix_fmt or first_frame.format.name
    return VideoInfo(
        index=stream.index,
        codec=context.codec.canonical_name,  # av1, not the decoder libdav1d
        width=context.width,
        height=context.height,
        pix_fmt=pix_fmt,
        bit_depth=max(c.bits for c in av.VideoFormat(pix_fmt).components),
        time_base=stream.time_base or Fraction(1, 90000),
        first_pts=first_frame.pts,
        average_rate=stream.average_rate or stream.guessed_rate,
        duration_s=_seconds(stream.duration, stream.time_base)
        or _seconds(container.duration, Fraction(1, av.time_base)),
        frame_count=count(stream.frames),
        variable_frame_rate=None,
        rotation=rotation_degrees(first_frame.rotation),
        display_matrix=display_matrix(first_frame),
        sample_aspect_ratio=stream.sample_aspect_ratio,
        color_range=first_frame.color_range,
        colorspace=first_frame.colorspace,
        color_primaries=first_frame.color_primaries,
        color_trc=first_frame.color_trc,
        tags=dict(stream.metadata),
    )


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's 3x3 display matrix (rotation and flips) as 9 int32, if any."""
    entries: Iterable[Any] = frame.side_data  # iterates SideData objects (the stub says str)
    for side_data in entries:
        if side_data.type == Type.DISPLAYMATRIX:
            return matrix_entries(bytes(side_data))
    return None


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as error:
        raise CorruptInputError(
            f"input video {path}: the first frame cannot be decoded ({error.strerror})"
        ) from None
    finally:
        container.seek(0)
    raise CorruptInputError(f"input video {path}: the video stream holds no decodable frame")


def _with_counted_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, video: VideoInfo
) -> VideoInfo:
    timestamps = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
    container.seek(0)
    steps = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False)]
    # One tick of slack: 30 fps in a 1/1000 time base alternates 33 and 34 ms.
    variable = bool(steps) and max(steps) - min(steps) > 1
    return replace(video, frame_count=len(timestamps), variable_frame_rate=variable)


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    context = stream.codec_context
    codec = context.codec.canonical_name if context is not None else _codec_name_of(stream)
    return StreamInfo(
        index=stream.index,
        kind=stream.type,
        codec=codec,
        language=stream.language,
        title=stream.metadata.get("title"),
    )


def _codec_name_of(stream: av.stream.Stream) -> str:
    return str(
        getattr(stream, "codec_name", None) or stream.metadata.get("handler_name", "unknown")
    )


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if not value or time_base is None:
        return None
    return float(value * time_base)


__all__ = [
    "VIDEO_SUFFIXES",
    "MediaInfo",
    "StreamInfo",
    "VideoInfo",
    "display_matrix",
    "probe",
    "select_video_stream",
]
