"""Which video encoder an output file gets: one table, keyed by its extension.

A user names an output (`out.webm`) and expects a file of that kind; the
encoder follows the container unless `video.codec` names one, and a container
that cannot hold the named encoder is refused before any frame is decoded,
with the encoders it does take. The README's table is this one.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import av

from clipswap_video.config_sections import VideoSettings
from clipswap_video.errors import OutputPathError
from clipswap_video.media.encoder import available_video_encoders, nvenc_usable, video_encoder

log = logging.getLogger(__name__)

H264 = "h264"
"""A container whose default is H.264: `video.h264_codec` picks the encoder."""
WEBM = "webm"
"""WebM's default: `video.webm_codec` (VP9 or AV1)."""
FRAME_COUNTING = frozenset({"avi"})
"""Muxers whose clock is the frame count, not a time."""


@dataclass(frozen=True)
class Container:
    """One kind of output file."""

    label: str  # what users call it
    muxer: str  # FFmpeg's name for its muxer
    suffixes: tuple[str, ...]
    video: str  # H264, WEBM or an encoder's name: what `video.codec = "auto"` gives


CONTAINERS = (
    Container("MP4", "mp4", (".mp4",), H264),
    Container("M4V", "ipod", (".m4v",), H264),  # FFmpeg's iTunes flavour of MP4
    Container("QuickTime", "mov", (".mov",), H264),
    Container("Matroska", "matroska", (".mkv",), H264),
    Container("MPEG-TS", "mpegts", (".ts", ".m2ts", ".mts"), H264),
    Container("WebM", "webm", (".webm",), WEBM),
    # AVI has no presentation times, so no B-frames: MPEG-4 Part 2 is the
    # codec every AVI player takes (H.264 in AVI is a hack many refuse).
    Container("AVI", "avi", (".avi",), "mpeg4"),
)


def container_for(output: Path) -> Container | None:
    """The table's row for `output`'s extension (None: FFmpeg guesses the muxer
    and the encoder defaults to H.264)."""
    suffix = output.suffix.lower()
    return next((row for row in CONTAINERS if suffix in row.suffixes), None)


def resolve_encoder(output: Path, settings: VideoSettings) -> str:
    """The encoder `output` gets: `video.codec`, or with `auto` its container's."""
    if settings.codec != "auto":
        return settings.codec
    row = container_for(output)
    family = row.video if row is not None else H264
    if family == WEBM:
        return settings.webm_codec
    if family != H264:
        return family
    if settings.h264_codec != "auto":
        return settings.h264_codec
    chosen = "h264_nvenc" if nvenc_usable() else "libx264"
    log.info("video.h264_codec auto -> %s", chosen)
    return chosen


def check_container_takes(output: Path, encoder: str) -> None:
    """Refuses, in one line, an encoder that `output`'s container cannot hold
    (or that this FFmpeg does not have)."""
    video_encoder(encoder)
    muxer = muxer_of(output)
    if muxer is None or muxer_takes(muxer, encoder):
        return
    label = _label(output, muxer)
    taken = [name for name in available_video_encoders() if muxer_takes(muxer, name)]
    others = [row.suffixes[0] for row in CONTAINERS if muxer_takes(row.muxer, encoder)]
    elsewhere = f", or an extension that holds {encoder}: {', '.join(others)}" if others else ""
    raise OutputPathError(
        f"output {output}: {label} cannot hold {encoder} video; it takes "
        f"{', '.join(taken) or 'none of the well-known encoders'} (choose one with --codec"
        f"{elsewhere})"
    )


def muxer_of(output: Path) -> str | None:
    """FFmpeg's muxer for `output` (None: FFmpeg knows none for its extension)."""
    row = container_for(output)
    if row is not None:
        return row.muxer
    try:
        # Opening for writing only picks the muxer; the file is created with the header.
        with av.open(str(output), "w") as trial:
            return str(trial.format.name)
    except (ValueError, av.FFmpegError, OSError):
        return None


@functools.cache
def muxer_takes(muxer: str, encoder: str) -> bool:
    """Whether `muxer` holds what `encoder` makes, asked of the muxer itself."""
    if muxer == "mpegts":
        # The MPEG-TS muxer writes any codec as private data that no demuxer
        # finds again; what a reader identifies is the standard stream types.
        return av.Codec(encoder, "w").canonical_name in _TS_VIDEO
    trial = av.open(io.BytesIO(), "w", format=muxer)
    try:
        trial.add_stream(encoder, rate=25)
        return True
    except (ValueError, TypeError, av.FFmpegError):
        return False
    finally:
        try:
            trial.close()
        except (ValueError, av.FFmpegError):
            pass  # a trial that never started has nothing to flush


_TS_VIDEO = frozenset({"h264", "hevc", "mpeg2video", "mpeg4", "vvc"})


def _label(output: Path, muxer: str) -> str:
    row = container_for(output)
    return row.label if row is not None else muxer


__all__ = [
    "CONTAINERS",
    "FRAME_COUNTING",
    "H264",
    "WEBM",
    "Container",
    "check_container_takes",
    "container_for",
    "muxer_of",
    "muxer_takes",
    "resolve_encoder",
]
