"""Reading an image sequence as VideoReader reads a video: frames in order, with pts.

Every image is a keyframe and every file can be opened on its own, so a span
(a range, a preview's seek) starts at its point exactly: the files before the
image on screen at the seek point are not read at all. A damaged image has
VideoReader's policy: off (default), CorruptInputError names it; with
`tolerate_errors` it is skipped (its time goes to the image before it, or with
`fill_gaps` that image is repeated) and `problems()` counts it.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from clipswap_video.config_sections import SequenceSettings
from clipswap_video.errors import CorruptInputError, UnreadableInputError
from clipswap_video.media.frame import Frame
from clipswap_video.media.info import MediaInfo
from clipswap_video.media.segments import Span
from clipswap_video.media.sequence import describe_numbers
from clipswap_video.media.sequence_probe import SequenceProbe, probe_sequence_files
from clipswap_video.media.stills import Still, StillError, read_still

log = logging.getLogger(__name__)


class SequenceReader:
    """Decodes the images of the sequence `path` names (media/sequence.py), one
    frame each; with a `span`, from the image on screen at its seek point to
    the one before its end. The interface is VideoReader's. Unless `quiet`, the
    gaps in the numbering and an alpha channel are reported, one warning each."""

    def __init__(
        self,
        path: Path,
        *,
        tolerate_errors: bool = False,
        span: Span | None = None,
        settings: SequenceSettings | None = None,
        quiet: bool = False,
    ) -> None:
        settings = settings or SequenceSettings()
        self.path = path
        probed = probe_sequence_files(path, settings)
        self.info: MediaInfo = probed.info
        self.tolerate_errors = tolerate_errors
        self.span = span
        self.skipped: list[str] = []  # the names of the images skipped as unreadable
        self._sequence = probed.sequence
        self._files = dict(probed.sequence.files)
        self._numbers = [number for number, _ in probed.sequence.files]
        self._fill_gaps = settings.fill_gaps
        if not quiet:  # a second reader of the same images (a preview) says nothing new
            _describe(probed, settings.fill_gaps)

    def __enter__(self) -> SequenceReader:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between images."""

    def frames(self) -> Iterator[Frame]:
        """Yields one frame per image (and per gap with `fill_gaps`), in number order."""
        index = 0
        shown: Path | None = None  # the last image read: what a gap repeats
        for number in self._wanted_numbers():
            file = self._files.get(number)
            still = self._read(file) if file is not None else None
            if still is not None:
                shown = file
            elif self._fill_gaps and shown is not None:
                still = self._read(shown)
            if still is None:
                continue
            picture = still.picture
            picture.pts = number - self._sequence.first
            picture.time_base = self.info.video.time_base
            yield Frame(index=index, decoded=picture)
            index += 1
        if index == 0 and self.skipped:
            pattern = self._sequence.pattern
            raise CorruptInputError(f"input sequence {pattern} holds no readable image")

    def problems(self) -> list[str]:
        """The damage that was tolerated, in one sentence."""
        if not self.skipped:
            return []
        names = ", ".join(self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
        return [f"skipped {len(self.skipped)} unreadable image(s): {names}"]

    def _wanted_numbers(self) -> list[int]:
        """The numbers to read: the span's, from the image on screen at its seek
        point (the last at or before it); every number with `fill_gaps`, else
        those that have a file."""
        first = self._sequence.first
        start, end = first, self._sequence.last + 1
        if self.span is not None and self.span.seek_pts is not None:
            at = bisect.bisect_right(self._numbers, first + self.span.seek_pts)
            start = self._numbers[max(at - 1, 0)]
        if self.span is not None and self.span.end_pts is not None:
            end = min(end, first + self.span.end_pts)
        if self._fill_gaps:
            return list(range(start, end))
        low, high = bisect.bisect_left(self._numbers, start), bisect.bisect_left(self._numbers, end)
        return self._numbers[low:high]

    def _read(self, file: Path) -> Still | None:
        """The image in `file`; None when it is damaged and damage is tolerated."""
        try:
            still = read_still(file)
        except StillError as error:
            if not self.tolerate_errors:
                raise CorruptInputError(
                    f"input sequence {self._sequence.pattern} is damaged: {file.name} cannot "
                    f"be read ({error}); rerun with --tolerate-errors to skip it"
                ) from None
            self.skipped.append(file.name)
            return None
        video = self.info.video
        size = (still.picture.width, still.picture.height)
        if size != (video.width, video.height):
            raise UnreadableInputError(
                f"input sequence {self._sequence.pattern}: {file.name} is {size[0]}x{size[1]} "
                f"but the first image is {video.width}x{video.height}; every image of a "
                "sequence must have one size"
            )
        return still


def _describe(probed: SequenceProbe, fill_gaps: bool) -> None:
    """A -v line on what is read, and one warning line each for what is lost:
    the gaps in the numbering, the alpha channel."""
    sequence = probed.sequence
    log.info(
        "image sequence %s: %d image(s), %d-%d, %s fps (%s)",
        sequence.pattern,
        len(sequence.files),
        sequence.first,
        sequence.last,
        _rate_text(probed),
        probed.fps_from,
    )
    missing = sequence.missing()
    if missing:
        what = "each repeats the image before it" if fill_gaps else "--fill-gaps fills them"
        log.warning(
            "%s: %d frame number(s) missing: %s (%s)",
            sequence.pattern,
            len(missing),
            describe_numbers(missing),
            what,
        )
    if probed.first.has_alpha:
        log.warning("%s: the alpha channel is ignored; the output has RGB only", sequence.pattern)


def _rate_text(probed: SequenceProbe) -> str:
    fps = probed.fps
    return str(fps.numerator) if fps.denominator == 1 else f"{float(fps):.3f} ({fps})"


__all__ = ["SequenceReader"]
