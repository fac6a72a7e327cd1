"""One device's jobs, one after another: a local worker process and a Ray actor
are each one VideoWorker.

    worker = VideoWorker("cuda:0", "cuda:0", weights_dir)
    outcome = worker.run(job, settings)

It keeps the models of the last settings, so jobs that share them load once
(a job with other source photos only prepares its identity on them). A failing
job becomes its outcome and the worker goes on, unless a CUDA error left its
GPU unusable (`device_lost`): then the executor replaces its process
(local_executor.py, ray_executor.py), at most RESTARTS times.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from clipswap_video.batch._worker_setup import DetectorFactory, device_failed, video_on
from clipswap_video.batch.jobs import JobOutcome, Segment, VideoJob, WorkUnit, job_of
from clipswap_video.config import Settings
from clipswap_video.errors import ClipswapError, ExitCode

if TYPE_CHECKING:
    from clipswap_video.swap import FaceSwapper

RESTARTS = 2
"""New processes a worker (a local process or a Ray actor) gets after it dies or
loses its GPU: a box or a GPU that keeps failing is not retried forever."""


class VideoWorker:
    """Runs whole videos or segments on one device, one after another, keeping
    the models of the last settings (a worker process and a Ray actor are each
    one of these)."""

    def __init__(
        self,
        device: str,
        label: str,
        weights_dir: Path | None,
        detector_factory: DetectorFactory | None = None,
    ) -> None:
        self.device = device
        self.label = label  # how outcomes name the worker
        self.weights_dir = weights_dir
        self.detector_factory = detector_factory
        self.device_lost = False  # a CUDA error made the GPU unusable to this process
        self._settings: Settings | None = None
        self._swapper: FaceSwapper | None = None  # the models of the settings above
        self._sources: tuple[Path, ...] = ()  # the identity the swapper holds

    def run(self, unit: WorkUnit, settings: Settings) -> JobOutcome:
        """Swaps one video or segment; a user error or a bug becomes its outcome."""
        from clipswap_video.pipeline import run_video
        from clipswap_video.swap.quality import quality_summary

        job = job_of(unit)
        segment = unit if isinstance(unit, Segment) else None
        on_device = dataclasses.replace(
            settings,
            swap=dataclasses.replace(settings.swap, device=self.device),
            faces=dataclasses.replace(settings.faces, device=self.device),
        )
        video = video_on(self.device, settings.video, job.output, segment is not None)
        on_device = dataclasses.replace(on_device, video=video)
        if on_device != self._settings:
            self._settings = on_device  # other settings: other models
            self._swapper = None  # one set of models at a time: GPU memory stays bounded
        try:
            swapper = self._swapper_for(job, on_device)
            done = run_video(
                list(job.sources),
                job.input,
                job.output if segment is None else segment.file,
                on_device,
                weights_dir=self.weights_dir,
                swapper=swapper,
                measure_quality=True,
                span=None if segment is None else segment.span,
                time_range=job.time_range,
            )
            coverage = done.coverage.as_json() if done.coverage is not None else None
            quality = done.quality  # a segment's record is merged at the join
            if segment is None and quality is not None:
                quality = quality_summary([quality], settings.batch)
            return JobOutcome.of(
                unit,
                self.label,
                frames=done.frames,
                elapsed_s=done.elapsed_s,
                coverage=coverage,
                quality=quality,
            )
        except Exception as error:  # the job's outcome; the worker goes on unless its GPU is lost
            return self._failed(unit, error)

    def _failed(self, unit: WorkUnit, error: Exception) -> JobOutcome:
        if device_failed(error):  # every later call on this GPU would fail too
            self.device_lost = True
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            return JobOutcome.of(
                unit,
                self.label,
                error=f"CUDA error on {self.device}, after which its worker cannot use "
                f"the GPU: {reason}",
                exit_code=ExitCode.INTERNAL,
            )
        if isinstance(error, ClipswapError):
            return JobOutcome.of(unit, self.label, error=str(error), exit_code=error.exit_code)
        return JobOutcome.of(  # a bug: report it against this job, keep the worker
            unit, self.label, error=f"internal error: {error!r}", exit_code=ExitCode.INTERNAL
        )

    def _swapper_for(self, job: VideoJob, settings: Settings) -> FaceSwapper | None:
        """The loaded models, holding the job's source identity: a job of
        another identity with the same settings keeps the models (and a
        compiled generator) and only prepares the new source."""
        if settings.swap.swapper == "none":
            return None
        if self._swapper is None:
            from clipswap_video.swap import FaceSwapper

            factory = self.detector_factory
            self._swapper = FaceSwapper(
                settings,
                list(job.sources),
                self.weights_dir,
                detector=None if factory is None else factory(settings.faces),
            )
        elif job.sources != self._sources:
            self._swapper.use_sources(list(job.sources))
        self._sources = job.sources
        return self._swapper


__all__ = ["RESTARTS", "VideoWorker"]
