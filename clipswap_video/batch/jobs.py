"""The batch's data: jobs, segments, plans, outcomes and run options (no behaviour).

Planning, the manifest and both executors share these; keeping them here lets
planning stay free of the multiprocessing executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipswap_video.config import ModeName
from clipswap_video.errors import ExitCode
from clipswap_video.media.segments import Span
from clipswap_video.media.trim import TimeRange


@dataclass(frozen=True)
class VideoJob:
    """One video to swap: the source photos (one person), the input and the
    output, and the part of the input to swap (None: all of it)."""

    sources: tuple[Path, ...]
    input: Path
    output: Path
    time_range: TimeRange | None = None


@dataclass(frozen=True)
class Segment:
    """A part of a long video between two keyframes: a unit of work of its own,
    for any free worker; its video-only `file` is joined into the job's output
    once every segment is done."""

    job: VideoJob
    number: int  # from 0, in time order
    span: Span
    file: Path


WorkUnit = VideoJob | Segment
"""What a worker is handed: a whole video, or one segment of a split one."""


@dataclass(frozen=True)
class JobOutcome:
    """What became of a job or of one of its segments: frames written, or the
    one-line error and its exit code."""

    job: VideoJob
    device: str
    frames: int = 0
    elapsed_s: float = 0.0
    error: str | None = None
    exit_code: int = ExitCode.OK
    coverage: dict[str, int] | None = None
    """FaceCoverage.as_json() of a finished job that looked for faces."""
    quality: dict[str, Any] | None = None
    """Of a whole job, quality_summary: per-second figures and flagged ranges; of
    a segment, its QualityLog.record, merged into the job's at the join."""
    segment: Segment | None = None
    """The segment this is the outcome of; None: the whole job."""

    @classmethod
    def of(cls, unit: WorkUnit, device: str, **fields: Any) -> JobOutcome:
        if isinstance(unit, Segment):
            return cls(unit.job, device, segment=unit, **fields)
        return cls(unit, device, **fields)

    @property
    def unit(self) -> WorkUnit:
        return self.segment if self.segment is not None else self.job

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PlannedJob:
    """A video job plus its own `section.key=value` overrides and where it came from."""

    job: VideoJob
    overrides: tuple[str, ...] = ()
    origin: str = ""


@dataclass(frozen=True)
class Plan:
    """Every job of a batch, checked, and where its manifest lives."""

    jobs: list[PlannedJob]
    manifest: Path


@dataclass(frozen=True)
class BatchOptions:
    """How a plan runs: settings for every job, executor, workers, rerun policy."""

    config: Path | None = None
    mode: ModeName = "video"
    overrides: tuple[str, ...] = ()  # --set and flags; they win over a job's own `set`
    weights_dir: Path | None = None
    workers: int | None = None
    devices: str | None = None
    ray: str | None = None
    """None: local worker processes; else Ray at this address (`local`: a Ray started
    for this batch, `auto`: the running cluster, `ray://host:port`)."""
    retry_failed: bool = False
    force: bool = False
    dry_run: bool = False


def job_of(unit: WorkUnit) -> VideoJob:
    return unit.job if isinstance(unit, Segment) else unit


__all__ = [
    "BatchOptions",
    "JobOutcome",
    "Plan",
    "PlannedJob",
    "Segment",
    "VideoJob",
    "WorkUnit",
    "job_of",
]
