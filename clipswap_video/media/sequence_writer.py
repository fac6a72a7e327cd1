"""Writing frames as an image sequence: one file per frame, numbered, in a
folder that appears only when complete (media/sequence_folder.py).

A file's number is the input's by default: an image sequence's own file
number (so its gaps stay gaps), a video's frame index counting from 0 (with
`--start`, the index in the whole video). `sequence.start_number` gives the
first file written another number; the others keep their distance from it.
A video input's first audio stream goes beside the frames as audio.wav
(media/sequence_audio.py). The interface is the one the pipeline uses of
VideoWriter.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av

from clipswap_video.errors import OutputUnwritableError
from clipswap_video.media.encoder import EncoderPlan
from clipswap_video.media.exr import EXR_ERRORS
from clipswap_video.media.frame import Frame
from clipswap_video.media.info import MediaInfo
from clipswap_video.media.output_file import AbortsOnError, OutputOptions
from clipswap_video.media.segments import frames_before
from clipswap_video.media.sequence import parse_pattern
from clipswap_video.media.sequence_audio import SequenceAudio, wav_plan
from clipswap_video.media.sequence_folder import AUDIO_NAME, SequenceFolder
from clipswap_video.media.still_writer import StillWriter, plan_still
from clipswap_video.media.stream_plan import StreamPlan

log = logging.getLogger(__name__)


class FrameNumbers:
    """The file number of each frame written, in order."""

    def __init__(self, source: MediaInfo, start: int | None) -> None:
        self._source = source
        self._start = start
        self._offset: int | None = None  # number = offset + step
        self._written = 0

    def next(self, frame: Frame) -> int:
        # A sequence's frames keep the spacing of their numbers (pts counts
        # them, gaps included); a video's frames are numbered one after another.
        step = frame.pts if self._source.is_sequence else self._written
        if self._offset is None:
            self._offset = self._first_number(frame) - step
        self._written += 1
        return self._offset + step

    def _first_number(self, frame: Frame) -> int:
        if self._start is not None:
            return self._start
        if self._source.first_number is not None:
            return self._source.first_number + frame.pts
        return frames_before(self._source.path, self._source.video.index, frame.pts)


class SequenceWriter(AbortsOnError):
    """Writes the frames given to `output` (a pattern such as shot/frame_%06d.exr),
    and the input's first audio stream as audio.wav beside them (unless
    `audio.mode` is drop), from the first frame written; use as a context
    manager, call `finish()` on success. With a `time_range` that ends, the
    sound ends with the last frame."""

    def __init__(
        self,
        output: Path,
        *,
        source: MediaInfo,
        options: OutputOptions,
        start_number: int | None = None,
    ) -> None:
        self.output = output
        self._pattern = parse_pattern(output, what="output")
        self.plan: EncoderPlan = plan_still(self._pattern.suffix, source.video)
        self._folder = SequenceFolder(self._pattern, source=source)
        self._files = StillWriter(
            self.plan, source.video, disclosure=options.disclosure, fps=source.video.average_rate
        )
        self._numbers = FrameNumbers(source, start_number)
        self._range = options.time_range
        self._frame_s = 1 / float(source.video.average_rate or 30)
        self._end_s = 0.0  # where the last frame written ends
        self._audio: SequenceAudio | None = None
        try:
            self._left_out = _left_out(source)
            sound = wav_plan(source, options.audio)
            self._notes = _notes(sound)
            if sound is not None and sound.target is not None:
                self._audio = SequenceAudio(
                    self._folder.partial / AUDIO_NAME,
                    source,
                    target=sound.target,
                    tolerate_errors=options.tolerate_errors,
                )
        except BaseException:
            self.abort()
            raise

    @property
    def dropped_streams(self) -> list[str]:
        return [*self._left_out, *self._notes[0]]

    @property
    def transcoded_streams(self) -> list[str]:
        return self._notes[1]

    def write(self, frame: Frame) -> None:
        """Encodes one frame into its own file, and the sound up to its time."""
        name = self._pattern.path(self._numbers.next(frame)).name
        path = self._folder.partial / name
        try:
            self._files.write(frame.picture(), path)
        except (OSError, *EXR_ERRORS) as error:  # OpenEXR raises RuntimeError on a full disk
            reason = getattr(error, "strerror", None) or error
            raise OutputUnwritableError(f"writing {path} failed: {reason}") from None
        duration = frame.decoded.duration
        self._end_s = frame.seconds + (
            float(duration * frame.time_base) if duration else self._frame_s
        )
        if self._audio is not None:
            self._audio.follow(frame.seconds)

    def problems(self) -> list[str]:
        """What was lost of the sound when errors were tolerated."""
        skipped = self._audio.skipped_packets if self._audio is not None else 0
        return [f"skipped {skipped} damaged audio packet(s)"] if skipped else []

    def finish(self) -> Path:
        """Completes the sound and renames the complete folder into place."""
        self.complete()
        return self.publish()

    def complete(self) -> None:
        """Every frame is written as it comes; the sound runs to the input's end,
        or a range's to its last frame's."""
        if self._audio is not None:
            ends = self._range is not None and self._range.end_s is not None
            self._audio.finish(self._end_s if ends else None)

    def publish(self) -> Path:
        self._folder.publish()
        return self.output

    def abort(self) -> None:
        """Removes the partial folder; safe to call twice."""
        if self._audio is not None:
            try:
                self._audio.close()
            except (av.FFmpegError, OSError, ValueError):
                pass  # already failing: the partial folder is removed below anyway
        self._folder.abort()


def _notes(sound: StreamPlan | None) -> tuple[list[str], list[str]]:
    """(dropped, transcoded): what becomes of the first audio stream, said once
    (a transcode to PCM is what audio.wav always is: a -v line)."""
    if sound is None:
        return [], []
    if sound.action == "drop":
        log.warning(sound.note())
        return [sound.note()], []
    log.info(sound.note())
    return [], [sound.note()]


def _left_out(source: MediaInfo) -> list[str]:
    """One warning line for the streams an image sequence has no place for:
    every one but the video and the first audio stream (which audio.wav holds)."""
    audio_index = next((s.index for s in source.streams if s.kind == "audio"), None)
    kept = {source.video.index, audio_index}  # audio.wav's, or dropped as audio.mode asks
    others = [f"{s.kind} #{s.index} ({s.codec})" for s in source.streams if s.index not in kept]
    if not others:
        return []
    note = f"an image sequence keeps no {', '.join(others)}; a video OUT keeps them"
    log.warning(note)
    return [note]


__all__ = ["FrameNumbers", "SequenceWriter"]
