"""One video: decode -> (analyse -> swap -> composite) -> encode, streamed.

The pipeline wires stages and owns no math. A reader thread decodes into a
bounded queue, the calling thread runs the frame stages, a writer thread
encodes and muxes. Everything is checked before the first frame is decoded
(source image, input, output path, encoder), and the output appears only when
complete.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipswap_video import __version__
from clipswap_video._threads import Consumer, Producer
from clipswap_video.config import Settings
from clipswap_video.errors import ConfigValueError, CorruptInputError, NothingSwappedError
from clipswap_video.media import Frame, read_image
from clipswap_video.media.factory import FrameReader, FrameWriter, open_reader, open_writer
from clipswap_video.media.output_file import OutputOptions
from clipswap_video.media.segments import Span
from clipswap_video.media.trim import TimeRange, span_for

if TYPE_CHECKING:
    from clipswap_video.faces.coverage import FaceCoverage
    from clipswap_video.swap import FaceSwapper, SwapStage

log = logging.getLogger(__name__)

FrameStage = Callable[[Frame], None]
"""Changes a frame in place (via Frame.replace_pixels) or leaves it as it is."""

ProgressCallback = Callable[[int], None]
"""Called with the number of frames just finished."""


@dataclass(frozen=True)
class JobResult:
    """What one finished video job did."""

    output: Path
    frames: int
    elapsed_s: float
    input_problems: list[str] = field(default_factory=list)  # tolerated damage
    dropped_streams: list[str] = field(default_factory=list)  # already logged when found
    transcoded_streams: list[str] = field(default_factory=list)  # likewise
    coverage: FaceCoverage | None = None  # None: `--swapper none`, no faces looked for
    quality: dict[str, Any] | None = None  # QualityLog.record(), when measured

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def disclosure_tag(settings: Settings) -> str:
    """The container comment that labels the output (synthetic media must say so)."""
    if settings.swap.swapper == "none":
        return f"processed by clipswap-video {__version__} (passthrough: no face swapped)"
    return f"synthetic: face swapped by clipswap-video {__version__}"


def run_video(
    source_image: Path | Sequence[Path],
    input_video: Path,
    output: Path,
    settings: Settings,
    *,
    stages: Sequence[FrameStage] = (),
    weights_dir: Path | None = None,
    swapper: FaceSwapper | None = None,
    on_start: Callable[[int | None], None] | None = None,
    on_progress: ProgressCallback | None = None,
    measure_quality: bool = False,
    span: Span | None = None,
    time_range: TimeRange | None = None,
    review: Path | None = None,
) -> JobResult:
    """Processes `input_video` into `output`; raises ClipswapError on bad input.

    `source_image` may be several photos of the same person: their identities
    are averaged.

    Unless `settings.swap.swapper` is "none", the face swap stage runs first,
    then any extra `stages` (tests use these to inspect or interrupt). A
    `swapper` already loaded (models, source identity) is reused; jobs of many
    videos pass one so that the models load once. `measure_quality`: the
    per-second quality record a batch keeps (JobResult.quality), at some cost.

    With a `span` (a segment of a split job), `output` gets the span's frames
    alone, encoded as a video-only file that SegmentJoiner joins; the frames
    decoded before the span's start (its warm-up) are swapped but not written.
    With a `time_range` (`--start`/`--end`), likewise from a keyframe before its
    start, and the output holds the range alone, every stream cut to it
    (media/trim.py).

    With a `review` path, input | output side by side is written there in the
    same pass (media/review.py); both files appear, or neither.

    `input_video` may be an image sequence and `output` an image sequence
    pattern (media/factory.py chooses the reader and the writer by the paths;
    `settings.sequence` gives an input sequence's rate and an output's numbers).
    """
    started = time.perf_counter()
    if settings.swap.swapper == "none" and settings.enhance.frame_model:
        raise ConfigValueError(
            "enhance.frame_model runs in a swap job; with swap.swapper = none the frames "
            "pass through untouched"
        )
    sources = [source_image] if isinstance(source_image, Path) else list(source_image)
    for source in sources:
        read_image(source)  # a bad source fails before any decoding
    tolerate = settings.input.tolerate_errors
    with open_reader(
        input_video,
        tolerate_errors=tolerate,
        span=span,
        settings=settings.sequence,
        hwaccel=settings.input.hwaccel,
    ) as reader:
        if time_range is not None:  # a segment's span comes cut already
            warmup_s = settings.batch.segment_warmup_seconds
            reader.span = span_for(reader.info.video, time_range, warmup_s)
        cut = reader.span
        with open_writer(
            output,
            review=review,
            queue_size=settings.pipeline.queue_size,
            source=reader.info,
            settings=settings.video,
            options=OutputOptions(
                disclosure=disclosure_tag(settings),
                audio=settings.audio,
                tolerate_errors=tolerate,
                copy_streams=span is None,
                time_range=time_range,
            ),
            sequence=settings.sequence,
        ) as writer:
            _describe(reader, writer)
            swap = None
            if settings.swap.swapper != "none":  # models load after the cheap checks
                if swapper is None:
                    swapper = _load_swapper(sources, settings, weights_dir)
                swap = swapper.stage_for(reader.info, measure_quality)
                swap.counted_from = cut.start_pts if cut is not None else None
            if on_start is not None:
                on_start(_expected_frames(reader, cut, time_range))
            first = cut.start_pts if cut is not None else None
            warm_from = _warmup_start(reader, first, settings.batch.segment_warmup_seconds)
            count = _stream_frames(
                reader,
                writer,
                swap,
                stages,
                settings.pipeline.queue_size,
                on_progress,
                (warm_from, first),
            )
            if span is not None and count != span.frames and not tolerate:
                raise CorruptInputError(
                    f"input video {input_video} is damaged: a segment decoded {count} of "
                    f"the {span.frames} frames its index holds"
                )
            if time_range is not None and count == 0:
                raise ConfigValueError(
                    f"no frame of {input_video} lies between --start and --end; nothing written"
                )
            if swap is not None and span is None:  # a segment's coverage counts at the join
                check_coverage(swap.coverage, swap.swapper.settings)  # detector resolved
            writer.finish()
    elapsed = time.perf_counter() - started
    coverage = swap.coverage if swap is not None else None
    quality = swap.quality.record() if swap is not None and swap.quality is not None else None
    problems = reader.problems() + writer.problems()
    return JobResult(
        output,
        count,
        elapsed,
        problems,
        writer.dropped_streams,
        writer.transcoded_streams,
        coverage=coverage,
        quality=quality,
    )


def check_coverage(coverage: FaceCoverage, settings: Settings) -> None:
    """A job that swapped no face says why: a warning, or with faces.strict an
    error raised before the output is renamed into place (so none appears)."""
    reason = coverage.nothing_swapped(settings.faces)
    if reason is None:
        return
    if settings.faces.strict:
        raise NothingSwappedError(f"no face was swapped: {reason}")
    log.warning("no face was swapped: %s", reason)


def _load_swapper(sources: list[Path], settings: Settings, weights_dir: Path | None) -> FaceSwapper:
    from clipswap_video.swap import FaceSwapper  # torch, dlib: only for jobs that swap

    return FaceSwapper(settings, sources, weights_dir)


def _stream_frames(
    reader: FrameReader,
    writer: FrameWriter,
    swap: SwapStage | None,
    stages: Sequence[FrameStage],
    queue_size: int,
    on_progress: ProgressCallback | None,
    warmup: tuple[int | None, int | None],
) -> int:
    """`warmup` (from, to): frames before `to` (a segment's or a range's first
    frame) are not encoded nor counted; of those, the ones from `from` on go
    through the swap stage so that tracks and smoothing settle, and the ones
    before it (decoded only because the keyframe lies further back) are dropped."""
    warm_from, first_pts = warmup
    stop = threading.Event()
    decoded = Producer(reader.frames(), maxsize=queue_size, stop=stop, name="decode")
    encoder = Consumer(writer.write, maxsize=queue_size, stop=stop, name="encode")
    count = 0

    def finish(frames: list[Frame]) -> None:
        nonlocal count
        if first_pts is not None:
            frames = [frame for frame in frames if frame.pts >= first_pts]
        for frame in frames:
            for stage in stages:
                stage(frame)
            encoder.put(frame)
        count += len(frames)
        if on_progress is not None and frames:
            on_progress(len(frames))

    try:
        for frame in decoded:
            if warm_from is not None and frame.pts < warm_from:
                continue
            # The swap stage holds frames until their batch is done, then hands them on in order.
            finish(swap.push(frame) if swap is not None else [frame])
        if swap is not None:
            finish(swap.flush())
        encoder.close()
    finally:
        stop.set()  # on any error or Ctrl-C: both threads end within a poll
        decoded.join()
        encoder.join()
    return count


def _warmup_start(reader: FrameReader, first_pts: int | None, warmup_s: float) -> int | None:
    """Where swapping starts before a span's first frame: `warmup_s` before it.
    A keyframe far earlier (x264 puts one every 250 frames by default) is
    decoded from, but the frames before this are not swapped."""
    if first_pts is None:
        return None
    return first_pts - round(warmup_s / reader.info.video.time_base)


def _describe(reader: FrameReader, writer: FrameWriter) -> None:
    """One `--verbose` line about what goes in and how it comes out."""
    video, plan = reader.info.video, writer.plan
    rate = f"{float(video.average_rate):.3f} fps" if video.average_rate else "unknown rate"
    options = " ".join(f"{key}={value}" for key, value in plan.options.items())
    log.info(
        "input %dx%d %s %s %s, %d other stream(s); encoding %s %s %s -> %s",
        video.width,
        video.height,
        video.codec,
        video.pix_fmt,
        rate,
        len(reader.info.streams) - 1,
        plan.codec,
        plan.pix_fmt,
        options,
        writer.output,
    )


def _expected_frames(
    reader: FrameReader, cut: Span | None, time_range: TimeRange | None
) -> int | None:
    """For the progress bar: the frames the job will write, as far as known."""
    video = reader.info.video
    if cut is not None and cut.frames is not None:
        return cut.frames
    if time_range is not None:
        end = time_range.end_s if time_range.end_s is not None else video.duration_s
        if end is None or not video.average_rate:
            return None
        return max(0, round((end - time_range.start_s) * float(video.average_rate)))
    if video.frame_count:
        return video.frame_count
    if video.duration_s and video.average_rate:
        return round(video.duration_s * float(video.average_rate))
    return None


__all__ = [
    "FrameStage",
    "JobResult",
    "ProgressCallback",
    "check_coverage",
    "disclosure_tag",
    "run_video",
]
