"""Streaming decode of the video stream: frames in order, with their own pts.

Damaged input has one policy, chosen by `tolerate_errors`:
- off (default): the first undecodable packet, demux error or premature end
  raises CorruptInputError, so no output that silently lacks frames is made;
- on: damaged packets are skipped and counted, a truncated file is read up to
  where it ends, and `problems()` describes what was lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import cast

import av
from av.video.stream import VideoStream

from clipswap_video.errors import CorruptInputError
from clipswap_video.media._open import FILE_DATA_ERRORS, cuda_decoding, ffmpeg_reason, open_input
from clipswap_video.media.frame import Frame
from clipswap_video.media.probe import MediaInfo, probe
from clipswap_video.media.segments import Span
from clipswap_video.media.tags import parse_clock


class VideoReader:
    """Decodes the chosen video stream of `path`, one frame at a time; with a
    `span` (given, or set before `frames()` once `info` is known), from the
    keyframe at its seek point to the frame before its end (the frames before
    its start are the warm-up, for the caller to drop)."""

    def __init__(
        self,
        path: Path,
        *,
        tolerate_errors: bool = False,
        span: Span | None = None,
        hwaccel: str = "none",
    ) -> None:
        self.path = path
        self.info: MediaInfo = probe(path)
        self.tolerate_errors = tolerate_errors
        self.span = span
        self.skipped_packets = 0
        self.corrupt_frames = 0
        self.backward_frames = 0
        self.leading_undecodable = 0  # before the first keyframe of a cut file
        self._first_pts: int | None = None
        self._early_pts: list[int] = []  # packets demuxed before the first frame came
        self.truncated_at_s: float | None = None
        self._container = open_input(path, hwaccel=hwaccel)
        self._stream = cast(VideoStream, self._container.streams[self.info.video.index])
        self._stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg

    @property
    def hardware_decoding(self) -> bool:
        """Whether the video is decoded by the GPU (`hwaccel`) rather than the CPU."""
        return bool(self._stream.codec_context.is_hwaccel)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self) -> Iterator[Frame]:
        """Yields every decodable frame in presentation order."""
        index = 0
        last: av.VideoFrame | None = None
        end = self.span.end_pts if self.span is not None else None
        for decoded in self._sought_frames():
            self._fill_missing_pts(decoded, last)
            if end is not None and decoded.pts is not None and decoded.pts >= end:
                return  # the next span's first frame: the end of the file is not checked
            if self._first_pts is None and decoded.pts is not None:
                self._first_pts = decoded.pts
                self.leading_undecodable += sum(pts < decoded.pts for pts in self._early_pts)
                self._early_pts.clear()
            if last is not None and _comes_before(decoded, last):
                # Damage (a repeated run of packets): an encoder cannot take it.
                self._damaged(f"a frame at {_time(decoded):.2f} s comes after a later one")
                self.backward_frames += 1
                continue
            if decoded.is_corrupt:
                self._damaged(f"frame {index} at {_time(decoded):.2f} s is corrupt")
                self.corrupt_frames += 1
            yield Frame(index=index, decoded=decoded)
            index += 1
            last = decoded
        self._check_complete(last)

    def problems(self) -> list[str]:
        """What the output lacks of the input, one sentence each: damage that was
        tolerated, and frames no decoder can show (a cut file's first ones)."""
        notes = []
        if self.leading_undecodable:
            notes.append(
                f"the first {self.leading_undecodable} frame(s) cannot be decoded (the file "
                "starts between keyframes, as a cut does) and are not in the output"
            )
        if self.skipped_packets:
            notes.append(f"skipped {self.skipped_packets} undecodable video packet(s)")
        if self.backward_frames:
            notes.append(f"dropped {self.backward_frames} frame(s) whose time went backwards")
        if self.corrupt_frames:
            notes.append(f"kept {self.corrupt_frames} frame(s) the decoder flagged as corrupt")
        if self.truncated_at_s is not None:
            notes.append(f"the input ends early, at {self.truncated_at_s:.2f} s")
        return notes

    def _sought_frames(self) -> Iterator[av.VideoFrame]:
        """The decoded frames from the span's seek point (without one, all).

        With an index (MP4, MOV, Matroska) a backward seek lands on the keyframe
        at or before the point. MPEG-TS has none: FFmpeg lands on the first
        keyframe after it, or past the last one and nothing decodes. Such a
        landing is seen on the first frame (later than the span's start, or than
        the seek point when the span has no start), and the seek moves back 1 s,
        then 2, 4, ... until it lands early enough, or decoding starts at the
        file's start."""
        target = self.span.seek_pts if self.span is not None else None
        if target is None:
            yield from self._decoded_frames()
            return
        assert self.span is not None
        limit = self.span.start_pts if self.span.start_pts is not None else target
        origin = self.info.video.first_pts or 0
        seek, back = target, 0
        while seek > origin:
            self._seek(seek)
            frames = self._decoded_frames()
            try:
                first = next(frames, None)
            except CorruptInputError:  # a landing between keyframes of a damaged file
                first = None
            if first is not None and (first.pts is None or first.pts <= limit):
                yield first
                yield from frames
                return
            back = 2 * back or max(1, round(1 / self.info.video.time_base))  # 1 s
            seek -= back
        self._seek(origin)
        yield from self._decoded_frames()

    def _seek(self, pts: int) -> None:
        try:
            self._container.seek(pts, stream=self._stream, backward=True)
        except FILE_DATA_ERRORS as error:
            raise CorruptInputError(
                f"input video {self.path} cannot be read from the middle: seeking failed "
                f"({ffmpeg_reason(error)})"
            ) from None

    def _decoded_frames(self) -> Iterator[av.VideoFrame]:
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except FILE_DATA_ERRORS as error:  # the container itself is damaged here
                self._damaged(f"demuxing failed ({ffmpeg_reason(error)})")
                return  # a demuxer cannot resume after an error: keep what was read
            self._note_leading(packet)
            yield from self._decode(packet)

    def _note_leading(self, packet: av.Packet) -> None:
        """Counts the packets the decoder silently drops: those shown before the
        first frame it gives, which reference pictures the file does not hold (a
        cut). Leading B-frames of an open GOP come after that frame's packet, so
        every packet is asked; a packet an edit list hides is not damage."""
        if not packet.size or packet.pts is None or packet.is_discard:
            return
        if self.span is not None and self.span.seek_pts is not None:
            return  # after a seek, frames before the keyframe are warm-up, not lost
        if self._first_pts is None:
            self._early_pts.append(packet.pts)
        elif packet.pts < self._first_pts:
            self.leading_undecodable += 1

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        # A size-0 packet is the demuxer's end-of-stream marker: decoding it
        # flushes the frames still held for B-frame reordering.
        try:
            return packet.decode()  # type: ignore[return-value]
        except FILE_DATA_ERRORS as error:
            at = float(packet.pts * packet.time_base) if packet.pts is not None else float("nan")
            self._damaged(f"undecodable video packet at {at:.2f} s ({ffmpeg_reason(error)})")
            self.skipped_packets += 1
            return []

    def _damaged(self, what: str) -> None:
        if not self.tolerate_errors:
            raise CorruptInputError(
                f"input video {self.path} is damaged: {what}; "
                "rerun with --tolerate-errors to skip the damage"
            )

    def _fill_missing_pts(self, decoded: av.VideoFrame, last: av.VideoFrame | None) -> None:
        # Raw elementary streams (.h264) carry no timestamps; continue the last one.
        if decoded.time_base is None:
            decoded.time_base = self.info.video.time_base
        if decoded.pts is None:
            step = _frame_step(self.info.video.average_rate, self.info.video.time_base)
            decoded.pts = 0 if last is None or last.pts is None else last.pts + step

    def _check_complete(self, last: av.VideoFrame | None) -> None:
        expected_end = self._expected_end_s()
        if last is None:
            raise CorruptInputError(f"input video {self.path} holds no decodable video frame")
        if expected_end is None:
            return
        frame_s = 1 / float(self.info.video.average_rate or 30)
        reached = _time(last) + frame_s
        if expected_end - reached > max(0.5, 3 * frame_s):
            self.truncated_at_s = reached
            self._damaged(f"it ends at {reached:.2f} s of {expected_end:.2f} s (truncated)")

    def _expected_end_s(self) -> float | None:
        """Where the container says the video stream ends (None when it does not say)."""
        stream = self._stream
        start = float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0.0
        if stream.duration and stream.time_base:
            return start + float(stream.duration * stream.time_base)
        tagged = parse_clock(stream.metadata.get("DURATION"))  # Matroska: one per track
        return start + tagged if tagged is not None else None


def nvdec_opens() -> bool:
    """Whether `input.hwaccel = "cuda"` decodes on the GPU here (NVDEC opens)."""
    return cuda_decoding() is not None


def _comes_before(frame: av.VideoFrame, previous: av.VideoFrame) -> bool:
    return frame.pts is not None and previous.pts is not None and frame.pts <= previous.pts


def _time(frame: av.VideoFrame) -> float:
    return float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0


def _frame_step(rate: Fraction | None, time_base: Fraction) -> int:
    return max(1, round(1 / (float(rate or 30) * time_base)))


__all__ = ["VideoReader", "nvdec_opens"]
