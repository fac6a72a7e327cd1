"""A time range of a video (`--start`, `--end`): what a trimmed job keeps.

The video is cut to the frame: decoding starts at a keyframe before the start
(the frames between are the warm-up, swapped but not written: media.segments'
Span), and the first frame written is the first at or after the start. The
other streams are cut packet by packet, without re-encoding: a packet is kept
when it starts at or after the first frame written and before the end, so
audio starts at most one audio frame (about 21 ms of AAC at 48 kHz) after the
video, as a player shows any cut file (passthrough.StreamCopier.trim).
Re-encoding the audio would align it to the sample but change every kept
packet; the copy keeps them bit for bit. Audio the output container cannot
hold, transcoded (media/audio.py), is cut the same way: by its source
packets' times, before they are decoded. Times in the output start at zero
unless `keep_timestamps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from clipswap_video.errors import ConfigValueError
from clipswap_video.media.probe import VideoInfo
from clipswap_video.media.segments import Span

if TYPE_CHECKING:
    from av.container.core import Chapter


@dataclass(frozen=True)
class TimeRange:
    """Seconds of the video's own timeline (0: its first frame); `end_s` None: to the end."""

    start_s: float = 0.0
    end_s: float | None = None
    keep_timestamps: bool = False

    def __post_init__(self) -> None:
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ConfigValueError(
                f"the range ends at {self.end_s:g} s, not after its start at {self.start_s:g} s"
            )


def span_for(video: VideoInfo, wanted: TimeRange, warmup_s: float) -> Span:
    """The frames of `wanted` as a reader's span, decoded from `warmup_s` before.

    Raises:
        ConfigValueError: the range starts at or after the video's end.
    """
    if video.duration_s is not None and wanted.start_s >= video.duration_s:
        raise ConfigValueError(
            f"--start {wanted.start_s:g} s is not before the video's end ({video.duration_s:.3f} s)"
        )
    origin = video.first_pts or 0  # no timestamps: the reader numbers frames from 0
    start = origin + round(wanted.start_s / video.time_base)
    end = None if wanted.end_s is None else origin + round(wanted.end_s / video.time_base)
    seek = start - round(warmup_s / video.time_base)
    return Span(start, end, seek if seek > origin and video.first_pts is not None else None, None)


def trimmed_chapters(
    chapters: tuple[Chapter, ...], video: VideoInfo, wanted: TimeRange
) -> list[Chapter]:
    """The chapters that overlap the range, clipped to it and moved with the
    output's clock (the range's start is 0 unless timestamps are kept)."""
    start = float((video.first_pts or 0) * video.time_base) + wanted.start_s
    end = None if wanted.end_s is None else start - wanted.start_s + wanted.end_s
    shift = 0.0 if wanted.keep_timestamps else start
    kept: list[Chapter] = []
    for chapter in chapters:
        base = chapter["time_base"]
        if base is None:  # no clock to place it by
            continue
        first, last = float(chapter["start"] * base), float(chapter["end"] * base)
        if last <= start or (end is not None and first >= end):
            continue
        first, last = max(first, start), last if end is None else min(last, end)
        start_at, end_at = round((first - shift) / base), round((last - shift) / base)
        kept.append(cast("Chapter", {**chapter, "start": start_at, "end": end_at}))
    return kept


__all__ = ["TimeRange", "span_for", "trimmed_chapters"]
