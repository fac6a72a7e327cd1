"""Folders and jobs files: plan, manifest, resume, executors (local, Ray).

    plan = plan_folder([Path("src.jpg")], Path("videos"), Path("out"))
    report = run_batch(plan, BatchOptions(overrides=("swap.swapper=classic",)))

Every job is checked before the first frame; then the jobs run on worker
processes (workers.py) or Ray actors (_batch_ray.py) and the driver, the only
writer of the manifest (_manifest.py), records each start and end as it
happens. A rerun skips jobs done with an unchanged input, resumes whatever a
killed batch left unfinished (outputs appear only when complete, so nothing
half-written looks done) and leaves failed jobs alone unless asked to retry.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clipswap_video._batch_plan import (
    Plan,
    PlannedJob,
    parse_sources,
    plan_folder,
    plan_jobs_file,
)
from clipswap_video._manifest import InputIdentity, Manifest, input_identity
from clipswap_video.atomic import partial_path, write_text_atomic
from clipswap_video.config import Settings, load_settings, to_toml
from clipswap_video.errors import (
    BatchInterruptedError,
    ClipswapError,
    ExitCode,
    OutputUnwritableError,
)
from clipswap_video.workers import JobOutcome, VideoJob, expand_devices, run_on_devices

ExecutorName = Literal["local", "ray"]
_RUN_ACTIONS = {"new", "resume", "input changed", "output missing", "retry", "force"}


@dataclass(frozen=True)
class BatchOptions:
    """How a plan runs: settings for every job, executor, workers, rerun policy."""

    config: Path | None = None
    overrides: tuple[str, ...] = ()  # --set and flags; they win over a job's own `set`
    weights_dir: Path | None = None
    executor: ExecutorName = "local"
    workers: int | None = None
    devices: str | None = None
    ray_address: str | None = None
    retry_failed: bool = False
    force: bool = False
    dry_run: bool = False


@dataclass
class BatchReport:
    """The planned jobs as the manifest has them after the run, plus what was done."""

    manifest: Path
    jobs: list[dict[str, Any]]
    executor: str
    workers: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        counts = {"done": 0, "failed": 0, "ran": 0, "skipped": 0}
        for job in self.jobs:
            counts[job["state"]] = counts.get(job["state"], 0) + 1
            counts["ran" if job["action"] in _RUN_ACTIONS else "skipped"] += 1
        return counts

    @property
    def exit_code(self) -> ExitCode:
        failed = any(job["state"] == "failed" for job in self.jobs)
        return ExitCode.JOBS_FAILED if failed and not self.dry_run else ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {"manifest": str(self.manifest), "executor": self.executor,
                "workers": self.workers, "wall_s": round(self.wall_s, 3),
                "dry_run": self.dry_run, "counts": self.counts(), "jobs": self.jobs}  # fmt: skip


def default_cpu_workers() -> int:
    """Worker processes on a machine without GPUs: one per core, at most 8.

    Measured on 2 cores (classic swapper, 640x360): one worker leaves the
    second core mostly idle (detection, warps and blending run one after
    another), two workers with one thread each finish the batch 1.5x sooner.
    Each worker holds its own models, so the cap bounds memory; beyond it the
    workers share the cores as threads (see workers.run_on_devices).
    """
    return max(1, min(8, len(os.sched_getaffinity(0))))


def worker_devices(options: BatchOptions) -> list[str]:
    """--devices as given; else one worker per GPU (--workers N: N of them, round
    robin over the GPUs); on a CPU-only machine --workers or default_cpu_workers()."""
    if options.devices:
        return expand_devices(options.devices)
    gpus = [device for device in expand_devices("auto") if device != "cpu"]
    if gpus:
        count = options.workers or len(gpus)
        return [gpus[index % len(gpus)] for index in range(count)]
    return ["cpu"] * (options.workers or default_cpu_workers())


def run_batch(
    plan: Plan,
    options: BatchOptions,
    *,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> BatchReport:
    """Runs (or with `dry_run`, only decides) every job of `plan`; returns the report.

    Raises:
        ClipswapError: a bad job or setting, before any job starts.
        BatchInterruptedError: Ctrl-C or SIGTERM; finished jobs are kept.
    """
    started = time.perf_counter()
    settings = _settings_for(plan.jobs, options)
    if options.dry_run:
        return _dry_run(plan, options)
    _make_folder(plan.manifest.parent)
    manifest = Manifest(plan.manifest)
    try:
        actions = _queue(plan.jobs, settings, manifest, options)
        todo = [p for p in plan.jobs if actions[p.job.output] in _RUN_ACTIONS]
        workers = _execute(todo, settings, manifest, options, on_outcome)
        report = _report(plan, manifest, actions, options.executor, workers)
    finally:
        manifest.close()
    report.wall_s = time.perf_counter() - started
    _write_json(plan.manifest.with_suffix(".json"), report.as_json())
    return report


def _settings_for(jobs: Sequence[PlannedJob], options: BatchOptions) -> dict[Path, Settings]:
    """Each job's effective settings: the config file, its own `set`, then the
    command line's (checked now: a bad key in job 40 fails before job 1 runs)."""
    from clipswap_video.faces import parse_selection

    built: dict[tuple[str, ...], Settings] = {}
    settings = {}
    for planned in jobs:
        if planned.overrides not in built:
            try:
                built[planned.overrides] = load_settings(
                    options.config, [*planned.overrides, *options.overrides]
                )
                parse_selection(built[planned.overrides].faces.select)
            except ClipswapError as error:
                where = f"{planned.origin}: " if planned.origin else ""
                raise type(error)(f"{where}{error}") from None
        settings[planned.job.output] = built[planned.overrides]
    return settings


def _decide(
    record: dict[str, Any] | None, changed: bool, output: Path, options: BatchOptions
) -> str:
    """What to do with one job, given its manifest row."""
    if record is None:
        return "new"
    if options.force:
        return "force"
    if changed:
        return "input changed"
    if record["state"] == "done":
        return "skip: done" if output.is_file() else "output missing"
    if record["state"] == "failed":
        return "retry" if options.retry_failed else "skip: failed"
    return "resume"  # queued or running: a batch that stopped before it


def _identity(manifest: Manifest, job: VideoJob) -> tuple[InputIdentity, bool]:
    """The input's identity now, and whether it differs from the manifest's."""
    known = manifest.identity(job.output)
    current = input_identity(job.input, known)
    changed = _changed(known, current)
    if known is not None and not changed and current.mtime_ns != known.mtime_ns:
        manifest.refresh_identity(job.output, current)  # touched or copied, same content
    return current, changed


def _changed(known: InputIdentity | None, current: InputIdentity) -> bool:
    """Size and content sample decide; an mtime alone does not (see input_identity)."""
    return known is not None and (current.size, current.sha256) != (known.size, known.sha256)


def _queue(
    jobs: Sequence[PlannedJob],
    settings: dict[Path, Settings],
    manifest: Manifest,
    options: BatchOptions,
) -> dict[Path, str]:
    """Decides every job and queues those that run (with their output folders)."""
    actions = {}
    for planned in jobs:
        job = planned.job
        identity, changed = _identity(manifest, job)
        action = _decide(manifest.record(job.output), changed, job.output, options)
        actions[job.output] = action
        if action in _RUN_ACTIONS:
            _make_folder(job.output.parent)
            manifest.queue(job.output, job.input, job.sources, identity,
                           to_toml(settings[job.output]))  # fmt: skip
    return actions


def _execute(
    todo: Sequence[PlannedJob],
    settings: dict[Path, Settings],
    manifest: Manifest,
    options: BatchOptions,
    on_outcome: Callable[[JobOutcome], None] | None,
) -> list[str]:
    """Runs the queued jobs, recording each start and end; returns the workers used."""
    finished: set[Path] = set()

    def started(job: VideoJob, device: str) -> None:
        manifest.start(job.output, device)

    def ended(outcome: JobOutcome) -> None:
        manifest.finish(outcome.job.output, device=outcome.device, frames=outcome.frames,
                        elapsed_s=outcome.elapsed_s, error=outcome.error,
                        exit_code=outcome.exit_code)  # fmt: skip
        finished.add(outcome.job.output)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        if options.executor == "ray":
            return _execute_ray(todo, settings, options, started, ended)
        return _execute_local(todo, settings, options, started, ended, finished)
    except KeyboardInterrupt:
        for output in manifest.requeue_running():  # local workers remove theirs; Ray
            partial_path(output).unlink(missing_ok=True)  # actors are killed mid-write
        left = len(todo) - len(finished)
        raise BatchInterruptedError(
            f"interrupted: {len(finished)} job(s) finished and kept, {left} left; "
            "run the same command again to resume"
        ) from None


def _execute_local(
    todo: Sequence[PlannedJob],
    settings: dict[Path, Settings],
    options: BatchOptions,
    started: Callable[[VideoJob, str], None],
    ended: Callable[[JobOutcome], None],
    finished: set[Path],
) -> list[str]:
    """Every job on one pool of worker processes; jobs that share settings are
    queued together, so a worker reloads its models only between groups."""
    if not todo:
        return []  # nothing to run: no workers, no torch import for the GPU count
    devices = worker_devices(options)
    groups: dict[str, list[VideoJob]] = {}
    for planned in todo:
        groups.setdefault(to_toml(settings[planned.job.output]), []).append(planned.job)
    jobs = [job for group in groups.values() for job in group]
    outcomes = run_on_devices(
        jobs, [settings[job.output] for job in jobs], devices,
        weights_dir=options.weights_dir, on_start=started, on_outcome=ended,
    )  # fmt: skip
    for outcome in outcomes:  # jobs no worker got to ("every worker stopped")
        if outcome.job.output not in finished:
            ended(outcome)
    return devices


def _execute_ray(
    todo: Sequence[PlannedJob],
    settings: dict[Path, Settings],
    options: BatchOptions,
    started: Callable[[VideoJob, str], None],
    ended: Callable[[JobOutcome], None],
) -> list[str]:
    from clipswap_video._batch_ray import run_on_ray

    work = [(planned.job, settings[planned.job.output]) for planned in todo]
    run_on_ray(work, workers=options.workers, cpu_workers=default_cpu_workers(),
               address=options.ray_address, weights_dir=options.weights_dir,
               on_start=started, on_outcome=ended)  # fmt: skip
    return [f"ray:{options.ray_address or 'local'}"]


def _report(
    plan: Plan, manifest: Manifest, actions: dict[Path, str], executor: str, workers: list[str]
) -> BatchReport:
    rows = [
        _row(manifest.record(planned.job.output), planned.job, actions[planned.job.output])
        for planned in plan.jobs
    ]
    return BatchReport(plan.manifest, rows, executor, workers)


def _dry_run(plan: Plan, options: BatchOptions) -> BatchReport:
    """The plan with what a real run would do, reading the manifest only."""
    manifest = Manifest(plan.manifest, read_only=True) if plan.manifest.is_file() else None
    rows = []
    for planned in plan.jobs:
        job = planned.job
        record = manifest.record(job.output) if manifest is not None else None
        known = manifest.identity(job.output) if manifest is not None else None
        changed = _changed(known, input_identity(job.input, known))
        rows.append(_row(record, job, _decide(record, changed, job.output, options)))
    if manifest is not None:
        manifest.close()
    return BatchReport(plan.manifest, rows, options.executor, dry_run=True)


def _row(record: dict[str, Any] | None, job: VideoJob, action: str) -> dict[str, Any]:
    """A report row: the job's manifest record (less the settings TOML, which
    stays in the manifest) and what this run did with it."""
    row = {key: value for key, value in (record or {"state": "new"}).items() if key != "settings"}
    return {**row, "input": str(job.input), "output": str(job.output),
            "sources": [str(source) for source in job.sources], "action": action}  # fmt: skip


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputUnwritableError(f"cannot create folder {folder}: {error.strerror}") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes the report beside the manifest, atomically (temp file + rename)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


__all__ = [
    "BatchOptions",
    "BatchReport",
    "ExecutorName",
    "Plan",
    "PlannedJob",
    "default_cpu_workers",
    "parse_sources",
    "plan_folder",
    "plan_jobs_file",
    "run_batch",
    "worker_devices",
]
