"""Audio the output container cannot hold as it is, transcoded once.

`AUDIO_ENCODERS` names each container's own audio codec; `audio_target`
settles the encoder, sample rate, channel layout and bit rate for one stream
(trying the encoder on this FFmpeg, in memory), and `AudioTranscoder` runs
decode -> resample -> encode on the packets the copier demuxes, so memory
stays flat as in a copy. Encoder priming (AAC's 1024 samples, Opus's 312)
comes out as packet times before the first sample's, which MP4 turns into an
edit list and WebM into a codec delay: the stream starts where the source's
does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import av
import av.container
from av.audio.stream import AudioStream

from clipswap_video.config_sections import AudioSettings
from clipswap_video.errors import ConfigValueError

AUDIO_ENCODERS: dict[str, str] = {
    "webm": "libopus",
    "matroska": "libopus",  # lossless sources: flac (audio_encoder_for)
    "mp4": "aac",
    "mov": "aac",
    "ipod": "aac",  # .m4v
    "3gp": "aac",
    "mpegts": "aac",
    "flv": "aac",
    "avi": "libmp3lame",
    "mpeg": "libmp3lame",  # MPEG-PS: mp2's encoder takes only its table's bit rates
    "asf": "libmp3lame",  # .wmv: this FFmpeg has no working WMA encoder
    "wav": "pcm_s16le",  # deeper sources: pcm_s24le (audio_encoder_for)
}
"""FFmpeg muxer name -> the audio encoder a stream it cannot hold is transcoded with."""

# Per channel, bits/s: (floor, ceiling, default for a lossless or unknown source).
# A lossy source keeps its own bit rate within [floor, ceiling]: the same rate
# loses little to a second generation, the floor keeps a starved source from
# getting worse, the ceiling stops paying for what the source never had. The
# defaults are generous (AAC 128, Opus 96 kb/s per channel: both transparent
# to most listeners; MP3 160, its 320 kb/s stereo maximum).
_BIT_RATES: dict[str, tuple[int, int, int]] = {
    "aac": (64_000, 160_000, 128_000),
    "libopus": (48_000, 128_000, 96_000),
    "libmp3lame": (64_000, 160_000, 160_000),
}
# Layouts by channel count, in the order Vorbis, Opus and FLAC define them: a
# layout whose order is unknown ("6 channels") gets this one, and so does one
# the encoder refuses (Opus takes 5.1 with back, not side, surrounds).
_STANDARD_LAYOUTS = {
    1: "mono",
    2: "stereo",
    3: "3.0",
    4: "quad",
    5: "5.0",
    6: "5.1",
    7: "6.1",
    8: "7.1",
}


@dataclass(frozen=True)
class AudioTarget:
    """What a transcoded audio stream becomes."""

    encoder: str
    sample_rate: int
    layout: str
    sample_format: str
    bit_rate: int | None  # None: a lossless encoder (FLAC, PCM)
    downmixed: bool = False  # fewer channels than the source: the encoder takes no more

    def describe(self) -> str:
        """`libopus at 128 kb/s`, and `, downmixed to stereo` where it is."""
        text = self.encoder + (f" at {round(self.bit_rate / 1000)} kb/s" if self.bit_rate else "")
        return text + (f", downmixed to {self.layout}" if self.downmixed else "")


def audio_encoder_for(muxer: str, *, lossless: bool, bits: int) -> str | None:
    """The encoder for audio `muxer` cannot hold (None: no encoder known for it).

    `lossless`: the source's codec loses nothing (PCM, FLAC, ALAC); `bits`: its
    sample depth. Matroska takes nearly every codec, so what reaches this is
    rare (a codec without a Matroska id): FLAC keeps a lossless source
    lossless, Opus is the best lossy codec Matroska players all decode.
    """
    encoder = AUDIO_ENCODERS.get(muxer)
    if encoder == "libopus" and muxer == "matroska" and lossless:
        return "flac"
    if encoder == "pcm_s16le" and bits > 16:
        return "pcm_s24le"
    return encoder


def audio_bit_rate(
    encoder: str, channels: int, source_bit_rate: int | None, *, lossless: bool
) -> int | None:
    """The rule of `_BIT_RATES` (None: a lossless encoder, which has no bit rate)."""
    if encoder not in _BIT_RATES:
        return None
    floor, ceiling, default = _BIT_RATES[encoder]
    if lossless or not source_bit_rate:
        return default * channels
    kept = min(max(source_bit_rate, floor * channels), ceiling * channels)
    return round(kept, -3)  # whole kb/s, as the warning writes it


def describe_audio(stream: AudioStream) -> str:
    """`aac, 2 ch, 48000 Hz, 128 kb/s` (the bit rate where the file states it)."""
    context = stream.codec_context
    text = f"{context.name}, {context.channels} ch, {context.sample_rate} Hz"
    return text + (f", {round(context.bit_rate / 1000)} kb/s" if context.bit_rate else "")


def audio_target(stream: AudioStream, muxer: str, settings: AudioSettings) -> AudioTarget | str:
    """What `stream` is transcoded to for `muxer`, or why it cannot be.

    Raises:
        ConfigValueError: the encoder refuses `settings.bitrate`.
    """
    context = stream.codec_context
    try:
        lossless = av.Codec(context.name, "r").lossless
    except av.codec.codec.UnknownCodecError:
        return "FFmpeg cannot decode it"
    encoder = audio_encoder_for(muxer, lossless=lossless, bits=_bits(stream))
    if encoder is None:
        return f"no audio encoder is known for {muxer}"
    if encoder not in av.codecs_available:
        return f"this FFmpeg lacks its encoder {encoder}"
    rate = _sample_rate(encoder, context.sample_rate)
    sample_format = _sample_format(encoder, _bits(stream))
    for layout in _layouts(context.layout):
        channels = av.AudioLayout(layout).nb_channels
        bit_rate = audio_bit_rate(encoder, channels, context.bit_rate, lossless=lossless)
        # libopus codes more than 2 channels with mapping family 1 (its default
        # picks it), so a 5.1 source stays 5.1 in WebM.
        if _opens(encoder, rate, layout, sample_format, bit_rate):
            break
    else:
        return f"{encoder} refuses {context.channels} channels at {rate} Hz"
    if settings.bitrate and bit_rate is not None:  # lossless encoders have no bit rate
        if not _opens(encoder, rate, layout, sample_format, settings.bitrate):
            raise ConfigValueError(
                f"audio.bitrate = {settings.bitrate} is outside what {encoder} takes for "
                f"{channels} channels; 0 takes the source's bit rate"
            )
        bit_rate = settings.bitrate
    downmixed = channels < context.channels
    return AudioTarget(encoder, rate, layout, sample_format, bit_rate, downmixed)


class AudioTranscoder:
    """Decodes one input audio stream, resamples it to `target` and encodes it
    into a stream of its own in `output` (`stream`)."""

    def __init__(
        self, source: AudioStream, output: av.container.OutputContainer, target: AudioTarget
    ) -> None:
        self._decoder = source.codec_context
        self._target = target
        added = output.add_stream(target.encoder, rate=target.sample_rate)
        self.stream = cast(AudioStream, added)
        context = self.stream.codec_context
        context.layout, context.format = target.layout, target.sample_format
        if target.bit_rate:
            context.bit_rate = target.bit_rate
        context.open()  # now: the muxer's header needs the encoder's (extradata, delay)
        self._resampler: av.AudioResampler | None = None
        self._shape: tuple[str, str, int] | None = None

    def transcode(self, packet: av.Packet) -> list[av.Packet]:
        """The encoded packets ready once `packet` (a source packet) is decoded."""
        return self._encoded(self._decoder.decode(packet))

    def flush(self) -> list[av.Packet]:
        """Every packet still held by the decoder, the resampler and the encoder."""
        packets = self._encoded(self._decoder.decode(None))
        held = self._resampler.resample(None) if self._resampler is not None else []
        return packets + self._encode([*held, None])

    def _encoded(self, frames: list[av.AudioFrame]) -> list[av.Packet]:
        return self._encode([part for frame in frames for part in self._resampled(frame)])

    def _encode(self, frames: list[av.AudioFrame | None]) -> list[av.Packet]:
        return [packet for frame in frames for packet in self.stream.encode(frame)]

    def _resampled(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        held: list[av.AudioFrame] = []
        if shape != self._shape:
            # A broadcast stream may switch between 5.1 and stereo: a resampler
            # takes one input shape, so a new one starts after the old one's rest.
            if self._resampler is not None:
                held = self._resampler.resample(None)
            target = self._target
            self._resampler = av.AudioResampler(
                format=target.sample_format, layout=target.layout, rate=target.sample_rate
            )
            self._shape = shape
        assert self._resampler is not None
        return held + self._resampler.resample(frame)


def _bits(stream: AudioStream) -> int:
    """The source's sample depth: PCM names it (pcm_s24le decodes to 32-bit samples)."""
    found = re.fullmatch(r"pcm_[a-z]*?(\d+)[a-z]*", stream.codec_context.name)
    return int(found.group(1)) if found else stream.codec_context.format.bits


def _sample_rate(encoder: str, source_rate: int) -> int:
    if encoder == "libopus":
        return 48_000  # Opus codes at 48 kHz inside; lower rates only narrow the band
    rates = av.Codec(encoder, "w").audio_rates
    if not rates or source_rate in rates:
        return source_rate
    higher = [rate for rate in rates if rate > source_rate]
    return min(higher) if higher else max(rates)


def _sample_format(encoder: str, bits: int) -> str:
    """A float format where the encoder takes one (lossy encoders work in float),
    else 32-bit integers for sources deeper than 16 bits (FLAC codes 24 of them)."""
    names = [fmt.name for fmt in av.Codec(encoder, "w").audio_formats or []]
    floats = [name for name in names if name.startswith("flt")]
    wide = [name for name in names if name.startswith("s32")]
    return (floats or (wide if bits > 16 else []) or names)[0]


def _layouts(layout: av.AudioLayout) -> list[str]:
    """The layouts to try, best first: the source's, the standard one of its
    channel count, stereo (a downmix, for MP3's two channels)."""
    ordered = [] if layout.name.endswith(" channels") else [layout.name]  # "6 channels": no order
    standard = _STANDARD_LAYOUTS.get(layout.nb_channels)
    candidates = [*ordered, *([standard] if standard else []), "stereo"]
    return list(dict.fromkeys(candidates))


def _opens(encoder: str, rate: int, layout: str, sample_format: str, bit_rate: int | None) -> bool:
    """Whether this FFmpeg's encoder takes these parameters (it checks them as it opens)."""
    context = av.Codec(encoder, "w").create("audio")
    context.sample_rate, context.layout, context.format = rate, layout, sample_format
    if bit_rate:
        context.bit_rate = bit_rate
    try:
        context.open()
    except (av.FFmpegError, ValueError):
        return False
    return True


__all__ = [
    "AUDIO_ENCODERS",
    "AudioTarget",
    "AudioTranscoder",
    "audio_bit_rate",
    "audio_encoder_for",
    "audio_target",
    "describe_audio",
]
