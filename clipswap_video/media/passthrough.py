"""Copying every non-processed stream (audio, subtitles, data) packet for packet.

The copier demuxes the input a second time, on its own, and only the streams
it copies. The writer asks it to catch up to each video frame's time, so the
copied packets reach the muxer interleaved with the video and memory stays
flat however long the file is.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import av
import av.container

from clipswap_video.errors import CorruptInputError
from clipswap_video.media._open import FILE_DATA_ERRORS, ffmpeg_reason, open_input
from clipswap_video.media.tags import METADATA_ERRORS, printable, stream_tags

log = logging.getLogger(__name__)

_COVER_TYPES = {"mjpeg": "image/jpeg", "png": "image/png"}
_SAMPLE_SEARCH = 2000  # packets read looking for an audio stream's first one
_KEEPER = {"data": ".ts", "attachment": ".mkv"}  # the container to suggest instead


class StreamCopier:
    """Copies the streams of `source` other than `video_index` into `output`.

    A packet the output's muxer refuses (its time goes backwards, its header is
    garbage: damage) stops the job, or with `tolerate_errors` is skipped and counted.
    """

    def __init__(
        self,
        source: Path,
        output: av.container.OutputContainer,
        *,
        video_index: int,
        tolerate_errors: bool = False,
    ) -> None:
        self._source = source
        self._tolerate_errors = tolerate_errors
        self._input = open_input(source)
        self._outputs: dict[int, av.stream.Stream] = {}
        self.dropped: list[str] = []
        self.skipped_packets = 0
        for stream in self._input.streams:
            if stream.index != video_index:
                self._add(stream, output)
        self._packets = self._demux()
        self._pending: av.Packet | None = None
        self._from_s = float("-inf")
        self._shift_s = 0.0

    def trim(self, from_s: float, shift_s: float) -> None:
        """Copies from now on only the packets that start at or after `from_s`,
        each moved `shift_s` earlier (a trimmed job; see media/trim.py). A packet
        without a timestamp cannot be placed in the range and is left out."""
        self._from_s, self._shift_s = from_s, shift_s

    def copy_until(self, seconds: float, output: av.container.OutputContainer) -> None:
        """Muxes every copied packet that starts at or before `seconds`."""
        while (packet := self._next()) is not None:
            if _start_s(packet) > seconds:
                self._pending = packet
                return
            self._mux_kept(packet, output)

    def copy_rest(self, output: av.container.OutputContainer, until_s: float | None = None) -> None:
        """Muxes every packet still unread (after the last video frame), or with
        `until_s` (a trimmed job's end) those that start before it."""
        while (packet := self._next()) is not None:
            if until_s is not None and _start_s(packet) >= until_s:
                return
            self._mux_kept(packet, output)

    def close(self) -> None:
        self._input.close()

    def _add(self, stream: av.stream.Stream, output: av.container.OutputContainer) -> None:
        if isinstance(stream, av.stream.AttachmentStream):
            self._add_attachment(stream, output)
            return
        codec = _codec_name(stream)
        is_cover = bool(stream.disposition & av.stream.Disposition.attached_pic)
        if is_cover and output.format.name == "matroska":
            self._add_cover(stream, codec, output)
            return
        sample = self._first_packet(stream) if stream.type == "audio" else None
        if not _holds(output, stream, sample):
            self._drop(stream, codec, f"{output.format.name} cannot hold it")
            return
        try:
            copy = output.add_stream_from_template(stream)
        except (av.FFmpegError, ValueError, TypeError) as error:
            self._drop(stream, codec, f"it cannot be copied ({error})")
            return
        copy.metadata.update(stream_tags(stream.metadata))  # language, title, handler
        copy.disposition = stream.disposition  # default / forced / comment flags
        self._outputs[stream.index] = copy

    def _add_cover(
        self, stream: av.stream.Stream, codec: str, output: av.container.OutputContainer
    ) -> None:
        """Cover art into Matroska, which keeps it as an attached picture file
        (a video track would lose the cover flag and play as a one-frame video)."""
        mimetype = _COVER_TYPES.get(codec)
        picture = self._first_packet(stream) if mimetype else None
        if mimetype is None or picture is None:
            self._drop(stream, codec, "matroska keeps cover art as a JPEG or PNG only")
            return
        name = "cover." + mimetype.split("/")[1].replace("jpeg", "jpg")
        output.add_attachment(name, mimetype, bytes(picture))

    def _first_packet(self, stream: av.stream.Stream) -> av.Packet | None:
        """The stream's first packet: for the muxer trial of an audio stream (the
        other kinds are judged by their header alone: a sparse subtitle's first
        packet can be an hour into the file), or a cover's picture."""
        # A container of its own: seeking the copier's back to the start is not
        # exact (it lands on the video's first keyframe, past earlier audio).
        with open_input(self._source) as reader:
            try:
                packets = reader.demux(reader.streams[stream.index])
                for index, packet in enumerate(packets):
                    if packet.size:
                        return packet
                    if index > _SAMPLE_SEARCH:
                        break
            except FILE_DATA_ERRORS:
                pass
        return None

    def _add_attachment(
        self, stream: av.stream.AttachmentStream, output: av.container.OutputContainer
    ) -> None:
        # Attachments (fonts for styled subtitles) have no packets: they are header data.
        if output.format.name != "matroska" or stream.name is None:
            self._drop(
                stream, stream.mimetype or "attachment", f"{output.format.name} cannot hold it"
            )
            return
        # PyAV takes the file name and type as UTF-8 only (a tag may not be).
        mimetype = printable(stream.mimetype or "application/octet-stream")
        output.add_attachment(printable(stream.name), mimetype, stream.data)

    def _drop(self, stream: av.stream.Stream, codec: str, why: str) -> None:
        note = f"dropped {stream.type} stream #{stream.index} ({codec}): {why}"
        note += f"; {_KEEPER.get(stream.type, '.mkv')} keeps it"
        log.warning(note)  # now, before a long render, not only in the job's result
        self.dropped.append(note)

    def _demux(self) -> Iterator[av.Packet]:
        if not self._outputs:
            return
        streams = [self._input.streams[index] for index in self._outputs]
        for packet in self._input.demux(streams):
            # Size 0 marks a stream's end (a decoder flush), not data to copy;
            # `dts is None` would also drop real packets of some formats.
            if packet.size:
                yield packet

    def _next(self) -> av.Packet | None:
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        try:
            return next(self._packets)
        except StopIteration:
            return None
        except FILE_DATA_ERRORS as error:
            log.warning("stopped copying audio/subtitles early: %s", ffmpeg_reason(error))
            self._packets = iter(())
            return None

    def _mux_kept(self, packet: av.Packet, output: av.container.OutputContainer) -> None:
        if _start_s(packet) < self._from_s:
            return
        if self._shift_s and packet.time_base is not None:
            delta = round(self._shift_s / packet.time_base)
            packet.pts = None if packet.pts is None else packet.pts - delta
            packet.dts = None if packet.dts is None else packet.dts - delta
        self._mux(packet, output)

    def _mux(self, packet: av.Packet, output: av.container.OutputContainer) -> None:
        packet.stream = self._outputs[packet.stream_index]
        try:
            output.mux_one(packet)
        except (av.error.ArgumentError, av.error.InvalidDataError) as error:
            # Damage the muxer notices: a time going backwards, a header it
            # cannot parse (MPEG-TS reads each AAC packet's).
            if not self._tolerate_errors:
                raise CorruptInputError(
                    f"input video {self._source} is damaged: the {output.format.name} muxer "
                    f"refuses its {packet.stream.type} packet at {_start_s(packet):.2f} s "
                    f"({ffmpeg_reason(error)}); rerun with --tolerate-errors to skip the damage"
                ) from None
            self.skipped_packets += 1


def _codec_name(stream: av.stream.Stream) -> str:
    if stream.codec_context is not None:
        return stream.codec_context.name
    return getattr(stream, "name", None) or "data"  # DataStream: the codec descriptor's name


def _holds(
    output: av.container.OutputContainer, stream: av.stream.Stream, sample: av.Packet | None
) -> bool:
    """Whether the output's muxer takes this stream, asked by writing a header,
    the stream's `sample` packet and a trailer in memory.

    FFmpeg's codec query is not enough: MPEG-TS answers "unknown" for AAC it
    does carry, MOV answers "yes" for Opus that its muxer then refuses, and MP4
    takes the header of Matroska's PCM but not its channel layout, which it
    checks only as the file is closed.
    """
    trial = av.open(io.BytesIO(), "w", format=output.format.name, metadata_errors=METADATA_ERRORS)
    try:
        copy = trial.add_stream_from_template(stream)
        trial.start_encoding()
        if sample is not None:
            sample.stream = copy
            trial.mux(sample)
        trial.close()
    except (av.FFmpegError, ValueError, TypeError):
        return False
    finally:
        with contextlib.suppress(av.FFmpegError, ValueError, TypeError):
            trial.close()
    return True


def _start_s(packet: av.Packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return float("-inf")  # no timestamp: mux it now, before the next frame
    return float(stamp * packet.time_base)


__all__ = ["StreamCopier"]
