"""What is in a media file, as data: streams, codecs, geometry, timing and colour tags.

Filled by `probe` (media/probe.py) for a video file and by `probe_sequence`
(media/sequence_probe.py) for an image sequence, which looks to the rest of the
program like a video with one stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from av.container.core import Chapter  # a TypedDict that exists in PyAV's stubs only


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the container."""

    index: int
    kind: str  # video, audio, subtitle, data, attachment
    codec: str
    language: str | None
    title: str | None


@dataclass(frozen=True)
class VideoInfo:
    """The video stream that will be processed."""

    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    time_base: Fraction
    first_pts: int | None
    """pts of the first decodable frame, where a player's clock reads 0 (a
    stream may start later than 0: MPEG-TS, cuts); None without timestamps."""
    average_rate: Fraction | None
    duration_s: float | None
    frame_count: int | None  # exact when counted, else the container's claim
    variable_frame_rate: bool | None  # None when not measured
    rotation: int  # degrees counter-clockwise, from the display matrix
    display_matrix: tuple[int, ...] | None  # the raw 3x3 matrix, copied to the output
    sample_aspect_ratio: Fraction | None
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    tags: dict[str, str] = field(default_factory=dict)  # the stream's own: title, language


@dataclass(frozen=True)
class MediaInfo:
    """A whole file (or image sequence): container facts, every stream, and the
    chosen video stream."""

    path: Path
    format_name: str
    duration_s: float | None
    bit_rate: int | None
    metadata: dict[str, str]
    streams: tuple[StreamInfo, ...]
    video: VideoInfo
    chapters: tuple[Chapter, ...] = ()
    first_number: int | None = None
    """An image sequence's first file number, the one at pts 0 (frame_001001.exr:
    1001); None for a video file."""

    @property
    def is_sequence(self) -> bool:
        """Whether this is an image sequence (one file per frame, no other streams)."""
        return self.first_number is not None


__all__ = ["MediaInfo", "StreamInfo", "VideoInfo"]
