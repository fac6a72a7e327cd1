"""The output file a job writes, whatever fills its video stream: the partial
file, the container's tags, every copied stream, the read-back check and the
rename.

The output is written to `<name>.partial<.ext>` beside the target (the naming
rule of clipswap_video.atomic; the partial file lives from the constructor to
`finish` or `abort`, longer than one `with` block) and renamed only after the
muxer has closed cleanly, so an interrupted or failed job never leaves a file
that looks finished. A disclosure tag goes in the container's `comment`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import av.container
from av.video.stream import VideoStream

from clipswap_video.atomic import partial_path
from clipswap_video.config_sections import AudioSettings
from clipswap_video.errors import (
    CorruptInputError,
    OutputPathError,
    OutputUnwritableError,
)
from clipswap_video.media._open import FILE_DATA_ERRORS, ffmpeg_reason
from clipswap_video.media.containers import FRAME_COUNTING, muxer_of
from clipswap_video.media.passthrough import StreamCopier
from clipswap_video.media.probe import MediaInfo, VideoInfo
from clipswap_video.media.tags import METADATA_ERRORS
from clipswap_video.media.trim import TimeRange, trimmed_chapters

# Container-level tags the muxer writes itself; copying them would be wrong.
_MUXER_OWNED_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "ENCODER"}


def same_file(path: Path, other: Path) -> bool:
    """Whether the two paths name one file (the same path, or a link to it)."""
    return path.resolve() == other.resolve() or (
        path.exists() and other.exists() and os.path.samefile(path, other)
    )


def check_output_path(input_path: Path, output: Path, *, what: str = "output") -> None:
    """Refuses outputs that would overwrite the input or cannot be created
    (`what` names the file in the message: an output, a review)."""
    if output.suffix == "":
        raise OutputPathError(f"{what} {output} needs a file extension such as .mp4, .mov or .mkv")
    if output.is_dir():
        raise OutputPathError(f"{what} {output} is a folder; give a file name such as out.mp4")
    if same_file(output, input_path):
        raise OutputPathError(f"{what} {output} is the input file; inputs are never overwritten")
    folder = output.parent
    if not folder.is_dir():
        raise OutputUnwritableError(f"{what} folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputUnwritableError(f"{what} folder {folder} is not writable")


@dataclass(frozen=True)
class OutputOptions:
    """What every file a job writes shares, whatever writes it (the output, its
    review, a segment, the join, an image sequence)."""

    disclosure: str  # the synthetic-media tag
    audio: AudioSettings = field(default_factory=AudioSettings)
    """What becomes of audio the container cannot hold."""
    tolerate_errors: bool = False
    copy_streams: bool = True  # False: the video alone (a segment of a split job)
    announce: bool = True
    """Whether a stream dropped or transcoded is said as a warning (a review's
    copy of the streams would repeat the output's)."""
    time_range: TimeRange | None = None
    """The part of the input the output holds (None: all of it)."""


class AbortsOnError:
    """A writer used as a context manager: a `with` block that fails aborts it
    (nothing that looks finished is left); success is the caller's `finish()`."""

    def abort(self) -> None:
        raise NotImplementedError

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


class OutputFile(AbortsOnError, ABC):
    """What the writer and the segment joiner share: the partial file, the
    container tags, every copied stream, the read-back check and the rename.
    A subclass adds the video stream (`_add_video`) and fills it."""

    def __init__(self, output: Path, *, source: MediaInfo, options: OutputOptions) -> None:
        check_output_path(source.path, output)
        self.output = output
        self._input = source.path
        self._video_packets = 0  # written, checked against what reads back
        self._partial = partial_path(output)
        self._container = _open_output(self._partial, output)
        self._copier: StreamCopier | None = None
        try:
            self._stream = self._add_video(self._container, source.video)
            copy_streams = options.copy_streams
            if copy_streams and not source.is_sequence:  # a sequence has no other stream
                self._copier = StreamCopier(
                    source.path,
                    self._container,
                    video_index=source.video.index,
                    audio=options.audio,
                    tolerate_errors=options.tolerate_errors,
                    announce=options.announce,
                )
            tags = _container_tags(source.metadata, options.disclosure)
            self._container.metadata.update(tags)
            chapters = list(source.chapters) if copy_streams else []
            if copy_streams and options.time_range is not None:
                chapters = trimmed_chapters(source.chapters, source.video, options.time_range)
            self._container.set_chapters(chapters)
            self._start()
        except BaseException:
            self.abort()
            raise

    @abstractmethod
    def _add_video(self, container: av.container.OutputContainer, video: VideoInfo) -> VideoStream:
        """Adds the output's video stream (its first)."""

    @property
    def dropped_streams(self) -> list[str]:
        return self._copier.dropped if self._copier else []

    @property
    def transcoded_streams(self) -> list[str]:
        return self._copier.transcoded if self._copier else []

    def problems(self) -> list[str]:
        """What was lost of the copied streams when errors were tolerated."""
        skipped = self._copier.skipped_packets if self._copier else 0
        return [f"skipped {skipped} damaged audio/subtitle packet(s)"] if skipped else []

    def _mux_video(self, packets: list[av.Packet], seconds: float) -> None:
        """Muxes video packets, after every copied packet that starts by `seconds`."""
        with self._output_errors():
            if self._copier is not None:
                self._copier.copy_until(seconds, self._container)
            self._container.mux(packets)
        self._video_packets += len(packets)

    def _flush(self) -> list[av.Packet]:
        """The video packets still held when the frames end (an encoder's delay)."""
        return []

    def _copy_until_s(self) -> float | None:
        """Where the copied streams end (None: with the input)."""
        return None

    def finish(self) -> Path:
        """Flushes the video, copies the remaining packets, renames into place."""
        self.complete()
        return self.publish()

    def complete(self) -> None:
        """All of `finish` but the rename: the partial file is whole and checked.
        Two outputs that must appear together are both completed first."""
        with self._output_errors():
            rest = self._flush()
            self._container.mux(rest)
            self._video_packets += len(rest)
            if self._copier is not None:
                self._copier.copy_rest(self._container, self._copy_until_s())
                self._copier.close()
            self._container.close()
            self._check_reads_back()

    def publish(self) -> Path:
        """Renames the completed partial file into place."""
        with self._output_errors():
            os.replace(self._partial, self.output)
        return self.output

    def _check_reads_back(self) -> None:
        """Demuxes the finished file once: its video stream must hold every
        packet written. A damaged input's other streams can make a muxer write
        a file that reads back without its video (an MPEG-TS whose audio
        parameters are garbage), and that must not look like a finished output."""
        try:
            with av.open(str(self._partial), metadata_errors=METADATA_ERRORS) as written:
                videos = written.streams.video
                found = sum(1 for p in written.demux(videos[0]) if p.size) if videos else 0
        except FILE_DATA_ERRORS:
            found = 0
        if found != self._video_packets:
            raise CorruptInputError(
                f"input video {self._input} is damaged: the output made from it reads back "
                f"with {found} of its {self._video_packets} video packets, so none was "
                "written; its other streams are the likely cause (an .mkv output may take them)"
            )

    @contextmanager
    def _output_errors(self) -> Iterator[None]:
        """A failed write (disk full, folder removed) becomes one clear error, and
        so does damage the muxer finds only as it writes its queue (a copied
        packet it refuses, reported on a later call or at the end)."""
        try:
            yield
        except OSError as error:
            reason = error.strerror or str(error)
            raise OutputUnwritableError(f"writing {self._partial} failed: {reason}") from None
        except (av.error.ArgumentError, av.error.InvalidDataError) as error:
            raise CorruptInputError(
                f"input video {self._input} is damaged: the {self._container.format.name} "
                f"muxer refuses what was copied from it ({ffmpeg_reason(error)})"
            ) from None

    def abort(self) -> None:
        """Closes everything and removes the partial file; safe to call twice."""
        for closer in (self._copier.close if self._copier else None, self._container.close):
            try:
                if closer is not None:
                    closer()
            except (av.FFmpegError, OSError, ValueError):
                pass  # already failing: the partial file is removed below anyway
        self._partial.unlink(missing_ok=True)

    def _start(self) -> None:
        try:
            self._container.start_encoding()
        except (av.FFmpegError, OSError) as error:  # the file is created here, lazily
            reason = getattr(error, "strerror", None) or error
            raise OutputUnwritableError(f"cannot create {self._partial}: {reason}") from None


def _open_output(partial: Path, output: Path) -> av.container.OutputContainer:
    # AVI places packets by count, not time: the usual shift of every stream
    # past an AAC priming packet's negative time would move each video frame
    # after the first by a fraction of a tick, rounded to a gap.
    counting = muxer_of(output) in FRAME_COUNTING
    options = {"avoid_negative_ts": "disabled"} if counting else {}
    try:
        return av.open(str(partial), mode="w", options=options, metadata_errors=METADATA_ERRORS)
    except ValueError as error:  # FFmpeg knows no muxer for this extension
        raise OutputPathError(
            f"output {partial.with_name(partial.name.replace('.partial', ''))}: {error}; "
            "use an extension such as .mp4, .mov or .mkv"
        ) from None
    except (av.FFmpegError, OSError) as error:
        raise OutputUnwritableError(
            f"cannot create {partial}: {getattr(error, 'strerror', None) or error}"
        ) from None


def _container_tags(metadata: dict[str, str], disclosure: str) -> dict[str, str]:
    tags = {key: value for key, value in metadata.items() if key not in _MUXER_OWNED_TAGS}
    earlier = tags.get("comment")
    tags["comment"] = f"{disclosure}; {earlier}" if earlier else disclosure
    return tags


__all__ = ["AbortsOnError", "OutputFile", "OutputOptions", "check_output_path", "same_file"]
