"""Encoding the processed video into an output file (media/output_file.py has
the file itself: the copied streams, the read-back check and the rename).
Timestamps, rotation, colour tags and the sample aspect ratio come from the
input; the encoder from media/containers.py.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.container
from av.video.stream import VideoStream

from clipswap_video.config_sections import VideoSettings
from clipswap_video.errors import (
    ConfigValueError,
    EncoderUnavailableError,
)
from clipswap_video.media.containers import (
    FRAME_COUNTING,
    check_container_takes,
    muxer_of,
    resolve_encoder,
)
from clipswap_video.media.encoder import EncoderPlan, plan_encoder
from clipswap_video.media.frame import Frame
from clipswap_video.media.output_file import OutputFile, OutputOptions, check_output_path
from clipswap_video.media.probe import MediaInfo, VideoInfo
from clipswap_video.media.tags import stream_tags

_BT709, _LIMITED_RANGE = 1, 1  # FFmpeg's codes for the colour matrix and the range


class VideoWriter(OutputFile):
    """Encodes frames into `output`; use as a context manager, call `finish()` on
    success. With a time range (`options.time_range`), the frames given are the
    range's: the other streams are cut to them and every time moves so the first
    frame is at 0 (unless the range keeps timestamps)."""

    def __init__(
        self, output: Path, *, source: MediaInfo, settings: VideoSettings, options: OutputOptions
    ) -> None:
        check_output_path(source.path, output)
        encoder = resolve_encoder(output, settings)
        check_container_takes(output, encoder)
        self.plan: EncoderPlan = plan_encoder(source.video, settings, encoder)
        self._to_yuv = _rgb_to_yuv(source.video, self.plan)
        self._range = options.time_range
        self._video = source.video
        self._shift_pts: int | None = None  # set by the first frame
        self._end_s = 0.0  # where the last frame written ends
        # AVI has no timestamps, only a frame count: its clock ticks once a frame.
        rate = source.video.average_rate or 30
        self._tick = 1 / Fraction(rate) if muxer_of(output) in FRAME_COUNTING else None
        self._last_tick = -1
        super().__init__(output, source=source, options=options)

    def _add_video(self, container: av.container.OutputContainer, video: VideoInfo) -> VideoStream:
        if self._to_yuv is not None:  # the stream says which matrix the conversion used
            video = replace(video, colorspace=_BT709, color_range=_LIMITED_RANGE)
        return _add_video_stream(container, video, self.plan, self._tick or video.time_base)

    def write(self, frame: Frame) -> None:
        """Encodes one frame (in presentation order) and muxes what is ready."""
        if self._shift_pts is None:
            self._start_at(frame)
        self._end_s = frame.seconds + self._duration_s(frame)
        self._mux_video(self._stream.encode(self._encoder_frame(frame)), frame.seconds)

    def _duration_s(self, frame: Frame) -> float:
        if frame.decoded.duration:
            return float(frame.decoded.duration * frame.time_base)
        return 1 / float(self._video.average_rate or 30)

    def _copy_until_s(self) -> float | None:
        """A trimmed job's other streams end with its last frame, so that audio
        runs at most one audio frame past the video, as it starts."""
        return self._end_s if self._range is not None and self._range.end_s is not None else None

    def _start_at(self, first: Frame) -> None:
        """The output's clock: a trimmed job's starts at its first frame."""
        wanted = self._range
        if wanted is None:
            self._shift_pts = 0
            return
        self._shift_pts = 0 if wanted.keep_timestamps else first.pts
        if self._copier is not None:
            self._copier.trim(first.seconds, float(self._shift_pts * first.time_base))

    def _flush(self) -> list[av.Packet]:
        return self._stream.encode(None)

    def _start(self) -> None:
        # Opening the encoder and writing the header now surfaces a missing
        # GPU encoder, a rejected option or an uncreatable file before the
        # first frame is decoded. The encoder goes first: its failures can
        # carry errno values (EPERM from NVENC) that look like file errors.
        try:
            self._stream.codec_context.open()
        except (av.FFmpegError, ValueError) as error:
            raise _encoder_error(self.plan, error) from None
        super()._start()

    def _encoder_frame(self, frame: Frame) -> av.VideoFrame:
        picture = frame.picture()
        if picture.format.name != self.plan.pix_fmt:
            picture = picture.reformat(format=self.plan.pix_fmt, **(self._to_yuv or {}))
        picture.pts = frame.pts - (self._shift_pts or 0)
        picture.time_base = frame.time_base
        if self._tick is not None:  # the nearest free tick keeps the frame, if not its time
            ticks = round(picture.pts * frame.time_base / self._tick)
            picture.pts = self._last_tick = max(ticks, self._last_tick + 1)
            picture.time_base = self._tick
        # Decoded frames remember their I/P/B type, and libx264 obeys it:
        # clear it so the encoder picks its own GOP instead of the input's.
        picture.pict_type = av.video.frame.PictureType.NONE
        return picture


def _rgb_to_yuv(video: VideoInfo, plan: EncoderPlan) -> dict[str, int] | None:
    """How an RGB input (an image sequence, a PNG or RGB video) is turned into
    the YUV the encoder takes: BT.709's matrix, limited range, as HD video is
    coded and players assume; None when there is no such conversion."""
    rgb_in = av.VideoFormat(video.pix_fmt).is_rgb
    if not rgb_in or av.VideoFormat(plan.pix_fmt).is_rgb:
        return None
    return {"dst_colorspace": _BT709, "dst_color_range": _LIMITED_RANGE}


def _add_video_stream(
    container: av.container.OutputContainer,
    video: VideoInfo,
    plan: EncoderPlan,
    time_base: Fraction,
) -> VideoStream:
    rate = video.average_rate or 30
    # check_container_takes has asked the muxer already
    stream = cast(VideoStream, container.add_stream(plan.codec, rate=rate, options=plan.options))
    stream.width, stream.height, stream.pix_fmt = video.width, video.height, plan.pix_fmt
    stream.time_base = time_base  # the input's clock, so pts pass through exactly
    context = stream.codec_context
    context.time_base = time_base
    context.color_range, context.colorspace = video.color_range, video.colorspace
    context.color_primaries, context.color_trc = video.color_primaries, video.color_trc
    if video.sample_aspect_ratio:
        context.sample_aspect_ratio = video.sample_aspect_ratio
    if video.display_matrix is not None:
        stream.set_display_matrix(video.display_matrix)
    stream.metadata.update(stream_tags(video.tags))
    return stream


def _encoder_error(plan: EncoderPlan, error: BaseException) -> Exception:
    reason = getattr(error, "strerror", None) or str(error)
    if "nvenc" in plan.codec:
        # Opening fails alike with no GPU, no driver, or a GPU without the NVENC
        # engine: the data-centre ones (A100, H100, H200) have NVDEC only.
        return EncoderUnavailableError(
            f"{plan.codec} could not be opened ({reason}): NVENC needs an NVIDIA GPU with a "
            "video encoder and its driver, and some data-centre GPUs (A100, H100, H200) have "
            "none; use --codec libx264 or libx265"
        )
    options = " ".join(f"{k}={v}" for k, v in plan.options.items())
    return ConfigValueError(
        f"video encoder {plan.codec} rejected its settings ({options}): {reason}"
    )


__all__ = ["VideoWriter"]
