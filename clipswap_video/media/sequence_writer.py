"""Writing frames as an image sequence: one file per frame, numbered, in a
folder that appears only when complete (media/sequence_folder.py).

A file's number is the input's by default: an image sequence's own file
number (so its gaps stay gaps), a video's frame index counting from 0 (with
`--start`, the index in the whole video). `sequence.start_number` gives the
first file written another number; the others keep their distance from it.
The interface is the one the pipeline uses of VideoWriter.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from clipswap_video.errors import OutputUnwritableError
from clipswap_video.media.encoder import EncoderPlan
from clipswap_video.media.exr import EXR_ERRORS
from clipswap_video.media.frame import Frame
from clipswap_video.media.info import MediaInfo
from clipswap_video.media.segments import frames_before
from clipswap_video.media.sequence import parse_pattern
from clipswap_video.media.sequence_folder import SequenceFolder
from clipswap_video.media.still_writer import StillWriter, plan_still


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


class SequenceWriter:
    """Writes the frames given to `output` (a pattern such as shot/frame_%06d.exr);
    use as a context manager, call `finish()` on success."""

    def __init__(
        self,
        output: Path,
        *,
        source: MediaInfo,
        disclosure: str,
        start_number: int | None = None,
    ) -> None:
        self.output = output
        self._pattern = parse_pattern(output, what="output")
        self.plan: EncoderPlan = plan_still(self._pattern.suffix, source.video)
        self._folder = SequenceFolder(self._pattern, source=source)
        self._files = StillWriter(
            self.plan, source.video, disclosure=disclosure, fps=source.video.average_rate
        )
        self._numbers = FrameNumbers(source, start_number)
        self.dropped_streams: list[str] = []  # the interface of VideoWriter
        self.transcoded_streams: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()

    def write(self, frame: Frame) -> None:
        """Encodes one frame into its own file."""
        name = self._pattern.path(self._numbers.next(frame)).name
        path = self._folder.partial / name
        try:
            self._files.write(frame.picture(), path)
        except (OSError, *EXR_ERRORS) as error:  # OpenEXR raises RuntimeError on a full disk
            reason = getattr(error, "strerror", None) or error
            raise OutputUnwritableError(f"writing {path} failed: {reason}") from None

    def problems(self) -> list[str]:
        """Nothing is copied from the input, so nothing of it can be lost."""
        return []

    def finish(self) -> Path:
        """Renames the complete folder into place."""
        self.complete()
        return self.publish()

    def complete(self) -> None:
        """Every frame is written as it comes: nothing is left to flush."""

    def publish(self) -> Path:
        self._folder.publish()
        return self.output

    def abort(self) -> None:
        """Removes the partial folder; safe to call twice."""
        self._folder.abort()


__all__ = ["FrameNumbers", "SequenceWriter"]
