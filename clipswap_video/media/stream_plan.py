"""What an output does with each input stream but the processed video: copy
it, transcode it (audio only, media/audio.py) or drop it.

The decision is made without writing anything (the muxer is asked in memory)
and by the one function the copier runs, `plan_stream`, so a plan shown
before a job (`plan_streams`) is the job's.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.container
from av.audio.stream import AudioStream

from clipswap_video.config_sections import AudioSettings
from clipswap_video.media._open import FILE_DATA_ERRORS, open_input
from clipswap_video.media.audio import AudioTarget, audio_target, describe_audio
from clipswap_video.media.probe import MediaInfo
from clipswap_video.media.tags import METADATA_ERRORS

StreamAction = Literal["copy", "transcode", "drop"]

COVER_TYPES = {"mjpeg": "image/jpeg", "png": "image/png"}
"""Cover-art codecs Matroska keeps (as an attached picture file), with their MIME types."""
_SAMPLE_SEARCH = 2000  # packets read looking for an audio stream's first one
_KEEPER = {"data": ".ts", "attachment": ".mkv"}  # the container to suggest instead


@dataclass(frozen=True)
class StreamPlan:
    """One input stream's fate in an output."""

    index: int
    kind: str  # audio, subtitle, data, attachment, video (a second one, or cover art)
    codec: str
    action: StreamAction
    reason: str = ""  # why it is not copied
    source: str = ""  # an audio stream's codec, channels, rate and bit rate
    target: AudioTarget | None = None  # what a transcoded stream becomes
    attached: bool = False  # copied as a Matroska attachment (a font, cover art)

    def describe(self) -> str:
        """One line: `#1 audio aac: transcode to libopus at 128 kb/s (webm cannot hold aac)`."""
        head = f"#{self.index} {self.kind} {self.codec}: {self.action}"
        if self.target is not None:
            head += f" to {self.target.describe()}"
        if self.attached:
            head += " (as an attachment)"
        return f"{head} ({self.reason})" if self.reason else head

    def note(self) -> str:
        """The warning a job gives as it starts (a copy gives none)."""
        if self.action == "transcode" and self.target is not None:
            return (
                f"transcoding {self.kind} stream #{self.index} ({self.source}) to "
                f"{self.target.describe()}: {self.reason}"
            )
        return f"dropped {self.kind} stream #{self.index} ({self.codec}): {self.reason}"


def plan_streams(source: MediaInfo, muxer: str, audio: AudioSettings) -> list[StreamPlan]:
    """The plan of every stream of `source` but its video, for an output written by `muxer`."""
    if source.is_sequence:
        return []  # an image sequence has no other stream
    with open_input(source.path) as container:
        return [
            plan_stream(stream, muxer, audio, source.path)
            for stream in container.streams
            if stream.index != source.video.index
        ]


def plan_stream(
    stream: av.stream.Stream, muxer: str, audio: AudioSettings, path: Path
) -> StreamPlan:
    """Copy where the muxer takes the stream as it is; else transcode audio
    (audio.mode auto, an encoder known for the muxer) or drop.

    `path`: the file `stream` is in, read again for the stream's first packet.
    """
    codec = codec_name(stream)
    if isinstance(stream, av.stream.AttachmentStream):
        # Attachments (fonts for styled subtitles) have no packets: they are header data.
        if muxer == "matroska" and stream.name is not None:
            return StreamPlan(stream.index, stream.type, codec, "copy", attached=True)
        return _drop(stream, codec, f"{muxer} cannot hold it")
    if stream.disposition & av.stream.Disposition.attached_pic and muxer == "matroska":
        # Matroska keeps cover art as an attached picture file (a video track
        # would lose the cover flag and play as a one-frame video).
        if codec in COVER_TYPES and first_packet(path, stream.index) is not None:
            return StreamPlan(stream.index, stream.type, codec, "copy", attached=True)
        reason = "matroska keeps cover art as a JPEG or PNG only"
        return StreamPlan(stream.index, stream.type, codec, "drop", reason)
    sample = first_packet(path, stream.index) if stream.type == "audio" else None
    if holds(muxer, stream, sample):
        return StreamPlan(stream.index, stream.type, codec, "copy")
    if not isinstance(stream, AudioStream) or audio.mode == "drop":
        return _drop(stream, codec, f"{muxer} cannot hold it")
    target = audio_target(stream, muxer, audio) if stream.codec_context else "no decoder"
    if isinstance(target, str):
        return _drop(stream, codec, f"{muxer} cannot hold it and {target}")
    reason = f"{muxer} cannot hold {codec}"
    return StreamPlan(
        stream.index, stream.type, codec, "transcode", reason, describe_audio(stream), target
    )


def _drop(stream: av.stream.Stream, codec: str, why: str) -> StreamPlan:
    reason = f"{why}; {_KEEPER.get(stream.type, '.mkv')} keeps it"
    return StreamPlan(stream.index, stream.type, codec, "drop", reason)


def codec_name(stream: av.stream.Stream) -> str:
    """The stream's codec, or for a stream without one, what it is."""
    if isinstance(stream, av.stream.AttachmentStream):
        return stream.mimetype or "attachment"
    if stream.codec_context is not None:
        return stream.codec_context.name
    return getattr(stream, "name", None) or "data"  # DataStream: the codec descriptor's name


def first_packet(path: Path, index: int) -> av.Packet | None:
    """Stream `index`'s first packet: for the muxer trial of an audio stream
    (the other kinds are judged by their header alone: a sparse subtitle's
    first packet can be an hour into the file), or a cover's picture."""
    # A container of its own: seeking a demuxer back to the start is not
    # exact (it lands on the video's first keyframe, past earlier audio).
    with open_input(path) as reader:
        try:
            packets = reader.demux(reader.streams[index])
            for count, packet in enumerate(packets):
                if packet.size:
                    return packet
                if count > _SAMPLE_SEARCH:
                    break
        except FILE_DATA_ERRORS:
            pass
    return None


def holds(muxer: str, stream: av.stream.Stream, sample: av.Packet | None) -> bool:
    """Whether `muxer` takes this stream as it is, asked by writing a header,
    the stream's `sample` packet and a trailer in memory.

    FFmpeg's codec query is not enough: MPEG-TS answers "unknown" for AAC it
    does carry, MOV answers "yes" for Opus that its muxer then refuses, and MP4
    takes the header of Matroska's PCM but not its channel layout, which it
    checks only as the file is closed.
    """
    trial = av.open(io.BytesIO(), "w", format=muxer, metadata_errors=METADATA_ERRORS)
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


__all__ = [
    "COVER_TYPES",
    "StreamAction",
    "StreamPlan",
    "codec_name",
    "first_packet",
    "holds",
    "plan_stream",
    "plan_streams",
]
