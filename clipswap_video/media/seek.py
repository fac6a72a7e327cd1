"""Decoding from a chosen time of the video stream: from the keyframe at or
before it, whatever the container's seek does.

With an index (MP4, MOV, Matroska) FFmpeg's backward seek lands on the
keyframe at or before the time asked. MPEG-TS has none: FFmpeg searches the
file for the time and lands on the first keyframe after it, or past the last
one, and then nothing decodes. Such a landing is seen on the first frame, and
the seek is moved back, 1 s, then 2, 4, ... further, down to the file's start.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clipswap_video.errors import CorruptInputError
from clipswap_video.media.frame import Frame
from clipswap_video.media.reader import VideoReader
from clipswap_video.media.segments import Span


@contextmanager
def frames_from(
    path: Path, pts: int | None, *, tolerate_errors: bool = False
) -> Iterator[tuple[VideoReader, Iterator[Frame]]]:
    """An open reader of `path` and its frames, the first at or before stream
    time `pts` (None: the video's first frame)."""
    seek, back = pts, 0
    while True:
        span = Span(start_pts=None, end_pts=None, seek_pts=seek, frames=0)
        with VideoReader(path, tolerate_errors=tolerate_errors, span=span) as reader:
            frames = reader.frames()
            first = _first(frames, from_start=seek is None)
            if first is not None and (pts is None or seek is None or first.pts <= pts):
                yield reader, itertools.chain([first], frames)
                return
            video = reader.info.video
        assert seek is not None  # from the start, the first frame is always taken
        back = 2 * back or max(1, round(1 / video.time_base))
        seek = seek - back if seek - back > (video.first_pts or 0) else None


def _first(frames: Iterator[Frame], *, from_start: bool) -> Frame | None:
    """The first frame; None when nothing decodes after a seek (past the last
    keyframe). From the start, no frame is the reader's error to give."""
    try:
        return next(frames, None)
    except CorruptInputError:
        if from_start:
            raise
        return None


__all__ = ["frames_from"]
