"""`clipswap-video preview`: chosen moments of a long video swapped as a full
run swaps them, in seconds: source | input | output at each time, one row each.

For each time T the reader seeks to the keyframe at or before T minus a warm-up
(`batch.segment_warmup_seconds`, the one a split job's segments use) and the
real swap stage runs from T minus the warm-up to the frame on screen at T, so
face tracks, landmark smoothing and the mask and colour averages are running
when that frame is reached, as in a full run. Nothing after T is swapped, so the time does not
grow with the video's length. T counts from the video's first frame, as a
player's clock does, whatever the stream's own start time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipswap_video.arrays import RgbImage
from clipswap_video.config import Settings
from clipswap_video.errors import ConfigValueError
from clipswap_video.media import Frame, MediaInfo, VideoInfo, probe, read_image
from clipswap_video.media.deep import rgb8
from clipswap_video.media.factory import open_reader
from clipswap_video.media.segments import Span
from clipswap_video.reports.faces import annotate
from clipswap_video.reports.preview import labelled_rows, side_by_side, write_image
from clipswap_video.times import format_time

if TYPE_CHECKING:
    from clipswap_video.swap import FaceSwapper, SwapStage


@dataclass(frozen=True)
class Moment:
    """The frame on screen at `at_s`, before and after the swap, upright."""

    at_s: float
    frame_s: float  # that frame's time from the first frame (at or just before at_s)
    input: RgbImage  # with --debug, the faces drawn on it
    output: RgbImage

    def label(self) -> str:
        """`at 0:00:03.050 (frame at 0:00:03.000)`; the frame's time only where it differs."""
        between = abs(self.frame_s - self.at_s) >= 0.0005  # as the label rounds
        shown = f" (frame at {format_time(self.frame_s)})" if between else ""
        return f"at {format_time(self.at_s)}{shown}"


def write_preview_at(
    sources: Sequence[Path],
    video: Path,
    times: Sequence[float],
    output: Path,
    settings: Settings,
    *,
    weights_dir: Path | None = None,
    debug: bool = False,
) -> None:
    """Writes source | input | output at each of `times` (seconds), one row per
    time, to the picture `output`. Every check comes before the models load."""
    source_picture = read_image(sources[0])  # a bad source fails before any decoding
    info = probe(video, sequence=settings.sequence)
    check_times(info, times)
    swapper = _load_swapper(sources, settings, weights_dir, debug)
    rows = []
    for at_s in times:  # each row made small at once: a 4K moment holds 50 MB of pictures
        moment = swap_at(info, at_s, settings, swapper, debug=debug)
        rows.append((moment.label(), side_by_side([source_picture, moment.input, moment.output])))
    write_image(labelled_rows(rows), output)


def check_times(info: MediaInfo, times: Sequence[float]) -> None:
    """Refuses a time at or past the end of the video, where its length is known
    (else swap_at finds out when the frames run out)."""
    length = info.video.duration_s
    for at_s in times:
        if length is not None and at_s >= length:
            raise _past_the_end(info.path, at_s, length)


def swap_at(
    info: MediaInfo,
    at_s: float,
    settings: Settings,
    swapper: FaceSwapper | None,
    *,
    debug: bool = False,
) -> Moment:
    """Seeks and swaps up to the frame on screen at `at_s` (no swap: `swapper` None)."""
    video = info.video
    seek = _seek_pts(video, at_s, settings.batch.segment_warmup_seconds)
    tolerate = settings.input.tolerate_errors
    span = None if seek is None else Span(None, None, seek, None)
    with open_reader(
        info.path, tolerate_errors=tolerate, span=span, settings=settings.sequence
    ) as reader:
        stage = swapper.stage_for(reader.info) if swapper is not None else None
        shown = _swap_to(reader.frames(), reader.info, stage, at_s, swap_from=seek)
    picture = rgb8(shown.decoded)  # before the swap
    if debug and stage is not None:
        picture = annotate(picture, stage.last_faces.found, stage.last_faces.swapped)
    turns = round(video.rotation / 90) % 4  # stored sideways: shown upright
    return Moment(
        at_s,
        float((shown.pts - (video.first_pts or 0)) * shown.time_base),
        np.rot90(picture, turns),
        np.rot90(shown.rgb(), turns),
    )


def _swap_to(
    frames: Iterator[Frame],
    info: MediaInfo,
    stage: SwapStage | None,
    at_s: float,
    *,
    swap_from: int | None,
) -> Frame:
    """Pushes `frames` from stream time `swap_from` (None: all) up to the one on
    screen at `at_s` (the last whose time is at or before it) through `stage`;
    returns that frame, swapped. The frames between the keyframe decoding
    starts at and `swap_from` are decoded only: a long GOP (x264's default is
    250 frames) would otherwise double the warm-up's swapping. The frame after
    `at_s` is decoded to know, but not swapped."""
    video = info.video
    target = _pts_at(video, at_s)
    shown: Frame | None = None
    for frame in frames:
        if frame.pts > target:
            break
        shown = frame
        if stage is not None and (swap_from is None or frame.pts >= swap_from):
            stage.push(frame)  # finished frames are not kept: only `shown` is wanted
        if frame.pts == target:
            break
    else:  # the frames ran out: at_s may lie past the last one's
        if shown is not None and target - shown.pts >= _frame_step(video):
            end_s = (shown.pts + _frame_step(video) - (video.first_pts or 0)) * video.time_base
            raise _past_the_end(info.path, at_s, float(end_s))
    assert shown is not None, "the reader starts at or before the warm-up, before at_s"
    if stage is not None:
        stage.flush()
    return shown


def _pts_at(video: VideoInfo, seconds: float) -> int:
    """The stream time `seconds` after the first frame, to the nearest tick (a
    typed 0.3 is 0.29999... s: rounding down would miss the frame at 0.3)."""
    return (video.first_pts or 0) + round(seconds / video.time_base)


def _seek_pts(video: VideoInfo, at_s: float, warmup_s: float) -> int | None:
    """Where the warm-up starts (decoding, at the keyframe at or before it);
    None: at the first frame, as for a stream without timestamps."""
    if video.first_pts is None or at_s <= warmup_s:
        return None
    return _pts_at(video, at_s - warmup_s)


def _frame_step(video: VideoInfo) -> int:
    """One frame's duration in stream ticks (30 fps when the rate is unknown)."""
    return max(1, round(1 / (float(video.average_rate or 30) * video.time_base)))


def _past_the_end(video: Path, at_s: float, length_s: float) -> ConfigValueError:
    return ConfigValueError(
        f"--at {format_time(at_s)} is past the end of {video}, which is "
        f"{format_time(length_s)} ({length_s:.3f} s) long"
    )


def _load_swapper(
    sources: Sequence[Path], settings: Settings, weights_dir: Path | None, debug: bool
) -> FaceSwapper | None:
    if settings.swap.swapper == "none":
        if debug:
            raise ConfigValueError(
                "--debug draws the faces the swap finds; with --swapper none none are looked for"
            )
        return None
    from clipswap_video.swap import FaceSwapper  # torch, dlib: only when a face is swapped

    return FaceSwapper(settings, sources, weights_dir)


__all__ = ["Moment", "check_times", "swap_at", "write_preview_at"]
