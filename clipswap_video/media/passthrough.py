"""Copying every non-processed stream (audio, subtitles, data) packet for packet,
or for audio the output container cannot hold, transcoding it once.

The copier demuxes the input a second time, on its own, and only the streams
it copies. The writer asks it to catch up to each video frame's time, so the
copied packets reach the muxer interleaved with the video and memory stays
flat however long the file is. What each stream gets is media/stream_plan.py's
decision; a transcoded stream's packets are chosen and cut by their source
packet's time exactly as copied ones are, then decoded and encoded
(media/audio.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import av
import av.container
from av.audio.stream import AudioStream

from clipswap_video.config_sections import AudioSettings
from clipswap_video.errors import CorruptInputError
from clipswap_video.media._open import FILE_DATA_ERRORS, ffmpeg_reason, open_input
from clipswap_video.media.audio import AudioTranscoder
from clipswap_video.media.stream_plan import COVER_TYPES, StreamPlan, first_packet, plan_stream
from clipswap_video.media.tags import printable, stream_tags

log = logging.getLogger(__name__)


class StreamCopier:
    """Copies the streams of `source` other than `video_index` into `output`,
    transcoding audio it cannot hold as `audio` says.

    A packet the output's muxer refuses (its time goes backwards, its header is
    garbage: damage) or an audio packet that cannot be decoded stops the job,
    or with `tolerate_errors` is skipped and counted.
    """

    def __init__(
        self,
        source: Path,
        output: av.container.OutputContainer,
        *,
        video_index: int,
        audio: AudioSettings,
        tolerate_errors: bool = False,
        announce: bool = True,
    ) -> None:
        self._source = source
        self._tolerate_errors = tolerate_errors
        self._announce = announce  # say each stream's fate as a warning
        self._input = open_input(source)
        self._outputs: dict[int, av.stream.Stream] = {}
        self._transcoders: dict[int, AudioTranscoder] = {}
        self.dropped: list[str] = []
        self.transcoded: list[str] = []
        self.skipped_packets = 0
        for stream in self._input.streams:
            if stream.index != video_index:
                plan = plan_stream(stream, output.format.name, audio, source)
                self._follow(plan, stream, output)
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
        `until_s` (a trimmed job's end) those that start before it, then what
        the transcoders still hold."""
        while (packet := self._next()) is not None:
            if until_s is not None and _start_s(packet) >= until_s:
                break
            self._mux_kept(packet, output)
        for index, transcoder in self._transcoders.items():
            for encoded in self._transcoded(transcoder, None, index):
                self._mux(self._shifted(encoded), transcoder.stream, output)

    def close(self) -> None:
        self._input.close()

    def _follow(
        self, plan: StreamPlan, stream: av.stream.Stream, output: av.container.OutputContainer
    ) -> None:
        if plan.action == "drop":
            self._drop(plan)
        elif plan.attached:
            self._add_attachment(stream, plan.codec, output)
        elif plan.action == "transcode":
            self._add_transcoded(plan, cast(AudioStream, stream), output)
        else:
            self._add_copy(plan, stream, output)

    def _add_copy(
        self, plan: StreamPlan, stream: av.stream.Stream, output: av.container.OutputContainer
    ) -> None:
        try:
            copy = output.add_stream_from_template(stream)
        except (av.FFmpegError, ValueError, TypeError) as error:
            self._drop(replace(plan, action="drop", reason=f"it cannot be copied ({error})"))
            return
        self._outputs[stream.index] = _tagged(copy, stream)

    def _add_transcoded(
        self, plan: StreamPlan, stream: AudioStream, output: av.container.OutputContainer
    ) -> None:
        assert plan.target is not None  # a transcode plan has one
        try:
            transcoder = AudioTranscoder(stream, output, plan.target)
        except (av.FFmpegError, ValueError) as error:
            reason = f"{plan.target.encoder} would not start ({error}); .mkv keeps it"
            self._drop(replace(plan, action="drop", reason=reason, target=None))
            return
        self._outputs[stream.index] = _tagged(transcoder.stream, stream)
        self._transcoders[stream.index] = transcoder
        self._report(plan, self.transcoded)

    def _add_attachment(
        self, stream: av.stream.Stream, codec: str, output: av.container.OutputContainer
    ) -> None:
        """A Matroska attachment: a font for styled subtitles, or cover art,
        which it keeps as a picture file (a video track would lose the cover
        flag and play as a one-frame video)."""
        if isinstance(stream, av.stream.AttachmentStream):
            # PyAV takes the file name and type as UTF-8 only (a tag may not be).
            mimetype = printable(stream.mimetype or "application/octet-stream")
            output.add_attachment(printable(str(stream.name)), mimetype, stream.data)
            return
        picture = first_packet(self._source, stream.index)
        assert picture is not None  # its plan found it
        mimetype = COVER_TYPES[codec]
        name = "cover." + mimetype.split("/")[1].replace("jpeg", "jpg")
        output.add_attachment(name, mimetype, bytes(picture))

    def _drop(self, plan: StreamPlan) -> None:
        self._report(plan, self.dropped)

    def _report(self, plan: StreamPlan, notes: list[str]) -> None:
        if self._announce:
            log.warning(plan.note())  # now, before a long render, not only in the job's result
        notes.append(plan.note())

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
        """Muxes `packet` if it is in the range: copied, or transcoded into what
        its decoding completes (a transcoded stream is cut by its source's times)."""
        if _start_s(packet) < self._from_s:
            return
        index = packet.stream_index
        transcoder = self._transcoders.get(index)
        if transcoder is None:
            self._mux(self._shifted(packet), self._outputs[index], output)
            return
        for encoded in self._transcoded(transcoder, packet, index):
            self._mux(self._shifted(encoded), transcoder.stream, output)

    def _transcoded(
        self, transcoder: AudioTranscoder, packet: av.Packet | None, index: int
    ) -> list[av.Packet]:
        """`packet` decoded and encoded (None: the transcoder's rest); a packet
        the decoder refuses is damage, like one the muxer refuses."""
        try:
            return transcoder.transcode(packet) if packet is not None else transcoder.flush()
        except FILE_DATA_ERRORS as error:
            if not self._tolerate_errors:
                at = f" at {_start_s(packet):.2f} s" if packet is not None else ""
                raise CorruptInputError(
                    f"input video {self._source} is damaged: its audio stream #{index} cannot "
                    f"be decoded{at} ({ffmpeg_reason(error)}); rerun with --tolerate-errors "
                    "to skip the damage"
                ) from None
            self.skipped_packets += 1
            return []

    def _shifted(self, packet: av.Packet) -> av.Packet:
        if self._shift_s and packet.time_base is not None:
            delta = round(self._shift_s / packet.time_base)
            packet.pts = None if packet.pts is None else packet.pts - delta
            packet.dts = None if packet.dts is None else packet.dts - delta
        return packet

    def _mux(
        self, packet: av.Packet, stream: av.stream.Stream, output: av.container.OutputContainer
    ) -> None:
        packet.stream = stream
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


def _tagged(copy: av.stream.Stream, stream: av.stream.Stream) -> av.stream.Stream:
    copy.metadata.update(stream_tags(stream.metadata))  # language, title, handler
    copy.disposition = stream.disposition  # default / forced / comment flags
    return copy


def _start_s(packet: av.Packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return float("-inf")  # no timestamp: mux it now, before the next frame
    return float(stamp * packet.time_base)


__all__ = ["StreamCopier"]
