"""The batch's data: jobs, plans, outcomes and run options (no behaviour).

Planning, the manifest and both executors share these; keeping them here lets
planning stay free of the multiprocessing executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipswap_video.config import ModeName
from clipswap_video.errors import ExitCode


@dataclass(frozen=True)
class VideoJob:
    """One video to swap: the source photos (one person), the input and the output."""

    sources: tuple[Path, ...]
    input: Path
    output: Path


@dataclass(frozen=True)
class JobOutcome:
    """What became of a job: frames written, or the one-line error and its exit code."""

    job: VideoJob
    device: str
    frames: int = 0
    elapsed_s: float = 0.0
    error: str | None = None
    exit_code: int = ExitCode.OK
    coverage: dict[str, int] | None = None
    """FaceCoverage.as_json() of a finished job that looked for faces."""
    quality: dict[str, Any] | None = None
    """QualityLog.as_json() of the same: per-second figures and flagged ranges."""

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


__all__ = ["BatchOptions", "JobOutcome", "Plan", "PlannedJob", "VideoJob"]
