"""The sound of an image sequence output: the input's first audio stream as
`audio.wav` beside the frames, in the sequence's folder.

A .wav is PCM, and it has no timestamps: its first sample plays with the
first frame. So the stream is always decoded (media/audio.py: the encoder and
depth `audio_target` picks for WAV, pcm_s16le or pcm_s24le for deeper
sources, and its AudioTranscoder) and cut to the sample: sample 0 is the one
at the first written frame's time (silence is put first if the audio starts
later), and with a range that ends, the last is the one before its last
frame ends. The stream copier's cut, a whole packet at a time, would leave a
WAV up to a packet or two late for good (33 ms of AAC at a range's start).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.container
from av.audio.stream import AudioStream

from clipswap_video.config_sections import AudioSettings
from clipswap_video.errors import CorruptInputError, OutputUnwritableError
from clipswap_video.media._open import FILE_DATA_ERRORS, ffmpeg_reason, open_input
from clipswap_video.media.audio import AudioTarget, AudioTranscoder, audio_target, describe_audio
from clipswap_video.media.info import MediaInfo
from clipswap_video.media.stream_plan import StreamPlan
from clipswap_video.media.tags import METADATA_ERRORS

_WARM_UP_S = 1.0  # decoded before a range's first frame: a decoder's first frames are not whole


class SequenceAudio:
    """`source`'s first audio stream written to `path` as `target` (wav_plan's)
    as the frames go by (`follow` each frame written, then `finish`)."""

    def __init__(
        self, path: Path, source: MediaInfo, *, target: AudioTarget, tolerate_errors: bool
    ) -> None:
        self.path = path
        self.skipped_packets = 0
        self._source = source.path
        self._tolerate_errors = tolerate_errors
        self._input = open_input(source.path)
        index = first_audio_index(source)
        assert index is not None, "only a source with audio gets an audio.wav (wav_plan)"
        self._stream = cast(AudioStream, self._input.streams[index])
        try:
            self._output = av.open(str(path), "w", format="wav", metadata_errors=METADATA_ERRORS)
        except (av.FFmpegError, OSError) as error:
            self._input.close()
            raise OutputUnwritableError(f"cannot create {path}: {ffmpeg_reason(error)}") from None
        self._transcoder = AudioTranscoder(self._stream, self._output, target)
        self._output.start_encoding()
        self._packets: Iterator[av.Packet] | None = None  # demuxed from the first frame's time
        self._pending: av.Packet | None = None
        self._start = 0  # the first frame's time, in samples of the output
        self._written = 0  # samples in the file

    def follow(self, seconds: float) -> None:
        """Writes the sound up to `seconds` (a written frame's time; the first
        one's is where the file starts)."""
        if self._packets is None:
            self._begin(seconds)
        while (packet := self._next()) is not None:
            if _start_s(packet) > seconds:
                self._pending = packet
                return
            self._write(self._transcoded(packet))

    def finish(self, until_s: float | None) -> None:
        """Writes the rest, up to `until_s` (None: the stream's end), and closes the file."""
        end = None if until_s is None else round(until_s * self._transcoder.stream.rate)
        while (packet := self._next()) is not None:
            self._write(self._transcoded(packet), end)
        self._write(self._transcoded(None), end)
        self.close()

    def close(self) -> None:
        self._input.close()
        self._output.close()

    def _begin(self, seconds: float) -> None:
        self._start = round(seconds * self._transcoder.stream.rate)
        base = self._stream.time_base or Fraction(1, self._transcoder.stream.rate)
        origin = float((self._stream.start_time or 0) * base)
        if seconds - _WARM_UP_S > origin:  # a range: no need to decode what comes before
            self._input.seek(round((seconds - _WARM_UP_S) / base), stream=self._stream)
        self._packets = (packet for packet in self._input.demux(self._stream) if packet.size)

    def _next(self) -> av.Packet | None:
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        assert self._packets is not None, "follow() starts the demuxer"
        try:
            return next(self._packets, None)
        except FILE_DATA_ERRORS as error:
            self._damaged(f"its audio cannot be demuxed ({ffmpeg_reason(error)})")
            self._packets = iter(())
            return None

    def _transcoded(self, packet: av.Packet | None) -> list[av.Packet]:
        try:
            if packet is None:
                return self._transcoder.flush()
            return self._transcoder.transcode(packet)
        except FILE_DATA_ERRORS as error:
            self._damaged(f"its audio cannot be decoded ({ffmpeg_reason(error)})")
            return []

    def _write(self, packets: list[av.Packet], end: int | None = None) -> None:
        """Muxes the PCM of `packets` from the first frame's sample on (to `end`)."""
        for packet in packets:
            assert packet.pts is not None and packet.duration, "PCM packets are timed"
            assert packet.time_base == Fraction(1, self._transcoder.stream.rate), "in samples"
            first = packet.pts - self._start  # where it lies in the file, in samples
            last = first + packet.duration
            if end is not None:
                last = min(last, end - self._start)
            keep_from = max(first, self._written)
            if last <= keep_from:
                continue
            size = packet.size // packet.duration  # bytes per sample of every channel
            if keep_from > self._written:  # the sound starts later: silence until then
                self._mux(bytes(size * (keep_from - self._written)), keep_from - self._written)
            data = bytes(packet)[(keep_from - first) * size : (last - first) * size]
            self._mux(data, last - keep_from)

    def _mux(self, data: bytes, samples: int) -> None:
        packet = av.Packet(data)
        packet.pts = packet.dts = self._written
        packet.duration = samples
        packet.time_base = Fraction(1, self._transcoder.stream.rate)
        packet.stream = self._transcoder.stream
        try:
            self._output.mux_one(packet)
        except OSError as error:
            reason = ffmpeg_reason(error)
            raise OutputUnwritableError(f"writing {self.path} failed: {reason}") from None
        self._written += samples

    def _damaged(self, what: str) -> None:
        if not self._tolerate_errors:
            raise CorruptInputError(
                f"input video {self._source} is damaged: {what}; rerun with --tolerate-errors "
                "to skip the damage"
            )
        self.skipped_packets += 1


def _start_s(packet: av.Packet) -> float:
    if packet.pts is None or packet.time_base is None:
        return float("-inf")  # no timestamp: decoded now, placed by the decoder
    return float(packet.pts * packet.time_base)


def first_audio_index(source: MediaInfo) -> int | None:
    """The index of `source`'s first audio stream, if it has one."""
    return next((stream.index for stream in source.streams if stream.kind == "audio"), None)


def wav_plan(source: MediaInfo, settings: AudioSettings) -> StreamPlan | None:
    """What becomes of the first audio stream in audio.wav (None: no audio.wav:
    no audio stream, or `audio.mode` drop)."""
    index = first_audio_index(source)
    if index is None or settings.mode == "drop":
        return None
    with open_input(source.path) as container:
        stream = cast(AudioStream, container.streams[index])
        target: AudioTarget | str = audio_target(stream, "wav", settings)
        codec = stream.codec_context.name
        if isinstance(target, str):
            return StreamPlan(index, "audio", codec, "drop", target)
        reason = "audio.wav beside the frames, cut to the sample"
        return StreamPlan(
            index, "audio", codec, "transcode", reason, describe_audio(stream), target
        )


__all__ = ["SequenceAudio", "first_audio_index", "wav_plan"]
