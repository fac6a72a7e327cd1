"""What an output path would get, said before anything is written
(`clipswap-video probe IN --output OUT`): the container, the video encoder and
why, and what happens to every other stream (the copier's own decision)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipswap_video.config import Settings
from clipswap_video.config_sections import VideoSettings
from clipswap_video.errors import OutputPathError
from clipswap_video.media.containers import (
    H264,
    WEBM,
    check_container_takes,
    container_for,
    muxer_of,
    resolve_encoder,
)
from clipswap_video.media.encoder import EncoderPlan, plan_encoder
from clipswap_video.media.probe import MediaInfo
from clipswap_video.media.sequence import is_sequence_output, parse_pattern
from clipswap_video.media.sequence_audio import wav_plan
from clipswap_video.media.still_writer import plan_still
from clipswap_video.media.stream_plan import StreamPlan, plan_streams


@dataclass(frozen=True)
class OutputPlan:
    """The answer for one output path."""

    output: Path
    container: str
    encoder: EncoderPlan
    why: str  # how the encoder was chosen
    streams: tuple[StreamPlan, ...]  # every stream but the video

    def lines(self) -> list[str]:
        options = " ".join(f"{key}={value}" for key, value in self.encoder.options.items())
        video = f"  video: {self.encoder.codec}, {self.encoder.pix_fmt}"
        video += (f", {options}" if options else "") + f" ({self.why})"
        others = [f"  {stream.describe()}" for stream in self.streams]
        return [f"{self.output}: {self.container}", video, *others]


def plan_output(source: MediaInfo, output: Path, settings: Settings) -> OutputPlan:
    """The plan a job from `source` to `output` would follow; the errors it would
    stop with (an encoder the container cannot hold) are raised here too."""
    if is_sequence_output(output):
        return _sequence_plan(source, output, settings)
    encoder = resolve_encoder(output, settings.video)
    check_container_takes(output, encoder)
    muxer = muxer_of(output)
    if muxer is None:
        raise OutputPathError(f"output {output}: FFmpeg knows no container for {output.suffix!r}")
    row = container_for(output)
    return OutputPlan(
        output=output,
        container=row.label if row is not None else muxer,
        encoder=plan_encoder(source.video, settings.video, encoder),
        why=_why(output, settings.video),
        streams=tuple(plan_streams(source, muxer, settings.audio)),
    )


def _sequence_plan(source: MediaInfo, output: Path, settings: Settings) -> OutputPlan:
    """An image sequence's: one file per frame at the input's depth, and the
    first audio stream in its audio.wav."""
    pattern = parse_pattern(output, what="output")
    sound = wav_plan(source, settings.audio)
    kind = f"image sequence ({pattern.suffix.lower().lstrip('.')})"
    return OutputPlan(
        output=output,
        container=kind + (", audio.wav" if sound is not None else ""),
        encoder=plan_still(pattern.suffix, source.video),
        why="the input's depth: docs/sequences.md",
        streams=(sound,) if sound is not None else (),
    )


def _why(output: Path, settings: VideoSettings) -> str:
    if settings.codec != "auto":
        return "video.codec"
    row = container_for(output)
    family = row.video if row is not None else H264
    label = row.label if row is not None else "this container"
    if family == WEBM:
        return f"{label}'s default: video.webm_codec"
    if family == H264:
        return f"{label}'s default, H.264: video.h264_codec"
    return f"{label}'s default"


__all__ = ["OutputPlan", "plan_output"]
