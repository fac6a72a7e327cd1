"""Splitting a long video at keyframes, from the demuxer's index alone (no decode).

A span is the frames whose presentation time lies in [start, end) of the
video stream's clock. Boundaries sit on keyframes, so each span's frames can be
decoded without the span before it; a worker decodes from an earlier keyframe
(`seek_pts`, the warm-up) so that face tracks and smoothing are settled when
the span's first frame is reached. Every frame belongs to exactly one span,
leading B-frames of an open GOP included: they are assigned by their own time,
and the span that holds them decodes the GOP before them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from clipswap_video.media._open import FILE_DATA_ERRORS, open_input


@dataclass(frozen=True)
class Span:
    """Frames with `start_pts <= pts < end_pts` (None: from the first, to the last)."""

    start_pts: int | None
    end_pts: int | None
    seek_pts: int | None
    """Decoding starts at the keyframe at or before this; None: at the file's start."""
    frames: int | None
    """How many frames the demuxer's index puts in the span; None: not counted."""


def split_at_keyframes(path: Path, video_index: int, every_s: float, warmup_s: float) -> list[Span]:
    """Spans of about `every_s` seconds each, cut at the first keyframe at or
    after each multiple; one span (the whole video) when the video is shorter,
    has no second keyframe there, or its packets lack timestamps (a raw stream:
    nothing to seek by). Raises nothing for damage: a file the demuxer cannot
    index is run whole, where the reader reports its damage."""
    try:
        packets, keyframes, time_base = _index(path, video_index)
    except FILE_DATA_ERRORS:
        packets, keyframes, time_base = [], [], None
    if time_base is None or not packets or every_s <= 0:
        return [Span(None, None, None, len(packets))]
    step = max(1, round(every_s / time_base))  # a boundary always after the first frame
    boundaries: list[int] = []
    for keyframe in keyframes:
        if keyframe - (boundaries[-1] if boundaries else packets[0]) >= step:
            boundaries.append(keyframe)
    warmup = round(warmup_s / time_base)
    starts: list[int | None] = [None, *boundaries]
    ends: list[int | None] = [*boundaries, None]
    return [
        Span(
            start,
            end,
            _seek_point(keyframes, start - warmup) if start is not None else None,
            _count(packets, start, end),
        )
        for start, end in zip(starts, ends, strict=True)
    ]


def frames_before(path: Path, video_index: int, pts: int) -> int:
    """The index of the frame at `pts` (how many frames come before it, counting
    from the first), from the demuxer's packets alone (no decode)."""
    with open_input(path) as container:
        count = 0
        for packet in container.demux(container.streams[video_index]):
            if packet.dts is not None and packet.dts >= pts:
                break  # this packet and every later one are shown at or after `pts`
            if packet.size and not packet.is_discard and packet.pts is not None:
                count += packet.pts < pts
        return count


def _index(path: Path, video_index: int) -> tuple[list[int], list[int], float | None]:
    """Sorted presentation times of the video packets, those of the keyframes,
    and the stream's time base in seconds (None: a packet had no timestamp)."""
    with open_input(path) as container:
        stream = container.streams[video_index]
        if stream.time_base is None:
            return [], [], None
        time_base = float(stream.time_base)  # read while the container is open
        times: list[int] = []
        keyframes: list[int] = []
        for packet in container.demux(stream):
            if not packet.size or packet.is_discard:  # end marks; frames an edit list hides
                continue
            if packet.pts is None:
                return [], [], None
            times.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
    return sorted(times), sorted(keyframes), time_base


def _seek_point(keyframes: list[int], target: int) -> int | None:
    """The last keyframe at or before `target`; None: decode from the start."""
    at = bisect.bisect_right(keyframes, target)
    return keyframes[at - 1] if at > 0 else None


def _count(times: list[int], start: int | None, end: int | None) -> int:
    low = 0 if start is None else bisect.bisect_left(times, start)
    high = len(times) if end is None else bisect.bisect_left(times, end)
    return high - low


__all__ = ["Span", "frames_before", "split_at_keyframes"]
