"""The reader and the writer of a job, chosen by its paths.

    with open_reader(input_path, settings=settings.sequence) as reader: ...
    with open_writer(output, source=reader.info, ...) as writer: ...

IN is a video file, or an image sequence (a printf pattern, a glob or a
folder: media/sequence.py); OUT is a video file, or an image sequence pattern
(shot/frame_%06d.exr). Both kinds of reader and of writer have one interface,
`FrameReader` and `FrameWriter`, which is all the pipeline and the preview use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from clipswap_video.config_sections import SequenceSettings, VideoSettings
from clipswap_video.errors import OutputPathError
from clipswap_video.media.encoder import EncoderPlan
from clipswap_video.media.frame import Frame
from clipswap_video.media.info import MediaInfo
from clipswap_video.media.output_file import OutputOptions
from clipswap_video.media.reader import VideoReader
from clipswap_video.media.review import ReviewingWriter
from clipswap_video.media.segments import Span
from clipswap_video.media.sequence import is_sequence_input, is_sequence_output
from clipswap_video.media.sequence_probe import parse_rate
from clipswap_video.media.sequence_reader import SequenceReader
from clipswap_video.media.sequence_writer import SequenceWriter

log = logging.getLogger(__name__)


class FrameReader(Protocol):
    """What decodes a job's input: VideoReader, SequenceReader."""

    path: Path
    info: MediaInfo
    span: Span | None

    def frames(self) -> Iterator[Frame]: ...
    def problems(self) -> list[str]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, *exc: type[BaseException] | BaseException | TracebackType | None
    ) -> None: ...


class FrameWriter(Protocol):
    """What encodes a job's output: VideoWriter (ReviewingWriter), SequenceWriter."""

    output: Path
    plan: EncoderPlan

    @property
    def dropped_streams(self) -> list[str]: ...
    @property
    def transcoded_streams(self) -> list[str]: ...
    def write(self, frame: Frame) -> None: ...
    def problems(self) -> list[str]: ...
    def finish(self) -> Path: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def open_reader(
    path: Path,
    *,
    tolerate_errors: bool = False,
    span: Span | None = None,
    settings: SequenceSettings | None = None,
    quiet: bool = False,
    hwaccel: str = "none",
) -> FrameReader:
    """The reader of `path`: a SequenceReader for an image sequence (which, unless
    `quiet`, warns of its gaps), else a VideoReader (decoding with `hwaccel`)."""
    settings = settings or SequenceSettings()
    if is_sequence_input(path):
        return SequenceReader(
            path, tolerate_errors=tolerate_errors, span=span, settings=settings, quiet=quiet
        )
    if parse_rate(settings.fps) is not None or settings.fill_gaps:  # parsed: a bad value fails
        log.warning("--fps and --fill-gaps apply to image sequences; %s keeps its own timing", path)
    return VideoReader(path, tolerate_errors=tolerate_errors, span=span, hwaccel=hwaccel)


def open_writer(
    output: Path,
    *,
    source: MediaInfo,
    settings: VideoSettings,
    options: OutputOptions,
    sequence: SequenceSettings | None = None,
    review: Path | None = None,
    queue_size: int = 8,
) -> FrameWriter:
    """The writer of `output`: a SequenceWriter for an image sequence pattern
    (numbered from `sequence.start_number`, its sound in audio.wav), else a
    VideoWriter (which also writes the `review`, if any)."""
    wanted = (sequence or SequenceSettings()).start_number
    start_number = None if wanted == "input" else wanted
    if not is_sequence_output(output):
        if start_number is not None:
            log.warning("--start-number applies to image sequence outputs; %s is a video", output)
        return ReviewingWriter(
            output,
            review=review,
            queue_size=queue_size,
            source=source,
            settings=settings,
            options=options,
        )
    if review is not None:
        raise OutputPathError(
            f"--review is written beside a video output; with the image sequence {output}, "
            "write the review in a second run with a video OUT, or leave it out"
        )
    return SequenceWriter(output, source=source, options=options, start_number=start_number)


__all__ = ["FrameReader", "FrameWriter", "open_reader", "open_writer"]
