"""Folders and jobs files: plan, manifest, resume, executors (local, Ray).

    plan = plan_folder([Path("src.jpg")], Path("videos"), Path("out"))
    report = run_batch(plan, BatchOptions(overrides=("swap.swapper=classic",)))

Every job is checked before the first frame; then the jobs run on worker
processes (local_executor.py) or Ray actors (ray_executor.py) and the driver, the only
writer of the manifest (manifest.py), records each start and end as it
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
from typing import Any

from clipswap_video._resources import import_extra
from clipswap_video.atomic import partial_path, write_text_atomic
from clipswap_video.batch.decide import RUN_ACTIONS, Decision, decide
from clipswap_video.batch.jobs import (
    BatchOptions,
    JobOutcome,
    Plan,
    PlannedJob,
    Segment,
    VideoJob,
    WorkUnit,
    job_of,
)
from clipswap_video.batch.local_executor import expand_devices, run_on_devices
from clipswap_video.batch.manifest import Manifest
from clipswap_video.batch.segments import (
    finish_split_job,
    plan_segments,
    segment_outcome_ends_job,
)
from clipswap_video.config import Settings, load_settings, to_toml
from clipswap_video.errors import (
    BatchInterruptedError,
    ClipswapError,
    ExitCode,
    OutputUnwritableError,
)


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
            counts["ran" if job["action"] in RUN_ACTIONS else "skipped"] += 1
        return counts

    @property
    def exit_code(self) -> ExitCode:
        failed = any(job["state"] == "failed" for job in self.jobs)
        return ExitCode.JOBS_FAILED if failed and not self.dry_run else ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {
            "manifest": str(self.manifest),
            "executor": self.executor,
            "workers": self.workers,
            "wall_s": round(self.wall_s, 3),
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "jobs": self.jobs,
        }


def default_cpu_workers() -> int:
    """Worker processes on a machine without GPUs: one per core, at most 8.

    One worker leaves the other cores mostly idle (detection, warps and
    blending run one after another); a worker per core, one thread each,
    finishes a batch sooner (figures: docs/benchmarks.md).
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
    if options.ray is not None:  # before the manifest or any folder exists
        import_extra("ray", "ray", "batch --ray")
    _make_folder(plan.manifest.parent)
    manifest = Manifest(plan.manifest)
    try:
        decisions = decide(plan.jobs, manifest, options)
        _queue(decisions, settings, manifest)
        work, joinable = _work(decisions, settings, manifest)
        workers = _execute(work, joinable, settings, manifest, options, on_outcome)
        report = _report(decisions, manifest, plan.manifest, options, workers)
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
                    options.config, [*planned.overrides, *options.overrides], options.mode
                )
                parse_selection(built[planned.overrides].faces.select)
            except ClipswapError as error:
                where = f"{planned.origin}: " if planned.origin else ""
                raise type(error)(f"{where}{error}") from None
        settings[planned.job.output] = built[planned.overrides]
    return settings


def _queue(
    decisions: Sequence[Decision], settings: dict[Path, Settings], manifest: Manifest
) -> None:
    """Records what was decided: refreshed identities of touched inputs, and the
    jobs that run (queued, with their output folders made)."""
    for decision in decisions:
        job = decision.planned.job
        if decision.touched:
            manifest.refresh_identity(job.output, decision.identity)
        if decision.runs:
            _make_folder(job.output.parent)
            manifest.queue(
                job.output, job.input, job.sources, decision.identity, to_toml(settings[job.output])
            )


def _work(
    decisions: Sequence[Decision], settings: dict[Path, Settings], manifest: Manifest
) -> tuple[list[WorkUnit], list[VideoJob]]:
    """What the workers run: whole jobs, and the segments still to run of split
    ones; and the split jobs left only to join (a batch died while joining)."""
    work: list[WorkUnit] = []
    joinable = []
    for decision in decisions:
        if not decision.runs:
            continue
        job, record = decision.planned.job, decision.record
        same_settings = record is not None and record["settings"] == to_toml(settings[job.output])
        keep = decision.action in ("resume", "retry") and same_settings
        try:
            segments = plan_segments(job, settings[job.output], manifest, keep_done=keep)
        except ClipswapError:  # an input that cannot be split runs whole: its worker
            segments = None  # reports what is wrong with it
        if segments is None:
            work.append(job)
        elif segments:
            work.extend(segments)
        else:
            joinable.append(job)
    return work, joinable


def _execute(
    work: Sequence[WorkUnit],
    joinable: Sequence[VideoJob],
    settings: dict[Path, Settings],
    manifest: Manifest,
    options: BatchOptions,
    on_outcome: Callable[[JobOutcome], None] | None,
) -> list[str]:
    """Runs the queued jobs and segments, recording each start and end, and
    joins each split job once its segments are all done; returns the workers used."""
    finished: set[WorkUnit] = set()
    started_jobs: set[Path] = set()
    jobs = {job_of(unit).output for unit in work} | {job.output for job in joinable}
    jobs_done: set[Path] = set()

    def started(unit: WorkUnit, device: str) -> None:
        job = job_of(unit)
        if isinstance(unit, Segment):
            manifest.start_segment(job.output, unit.number, device)
        if job.output not in started_jobs:
            started_jobs.add(job.output)
            manifest.start(job.output, device)

    def ended(outcome: JobOutcome) -> None:
        finished.add(outcome.unit)
        if outcome.segment is not None:
            if not segment_outcome_ends_job(manifest, outcome):
                return
            outcome = finish_split_job(outcome.job, settings[outcome.job.output], manifest)
        manifest.finish(outcome)
        jobs_done.add(outcome.job.output)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        for job in joinable:
            started(job, "driver")
            ended(finish_split_job(job, settings[job.output], manifest))
        if options.ray is not None:
            return _execute_ray(work, settings, options.ray, options, started, ended)
        return _execute_local(work, settings, options, started, ended, finished)
    except KeyboardInterrupt:
        for output in manifest.requeue_running():  # local workers remove theirs; Ray
            partial_path(output).unlink(missing_ok=True)  # actors are killed mid-write
        left = len(jobs) - len(jobs_done)
        raise BatchInterruptedError(
            f"interrupted: {len(jobs_done)} job(s) finished and kept, {left} left; "
            "run the same command again to resume"
        ) from None


def _execute_local(
    work: Sequence[WorkUnit],
    settings: dict[Path, Settings],
    options: BatchOptions,
    started: Callable[[WorkUnit, str], None],
    ended: Callable[[JobOutcome], None],
    finished: set[WorkUnit],
) -> list[str]:
    """Every job and segment on one pool of worker processes; those that share
    settings are queued together, so a worker reloads its models only between groups."""
    if not work:
        return []  # nothing to run: no workers, no torch import for the GPU count
    devices = worker_devices(options)
    groups: dict[str, list[WorkUnit]] = {}
    for unit in work:
        groups.setdefault(to_toml(settings[job_of(unit).output]), []).append(unit)
    units = [unit for group in groups.values() for unit in group]
    outcomes = run_on_devices(
        units,
        [settings[job_of(unit).output] for unit in units],
        devices,
        weights_dir=options.weights_dir,
        on_start=started,
        on_outcome=ended,
    )
    for outcome in outcomes:  # jobs no worker got to ("every worker died or stopped")
        if outcome.unit not in finished:
            ended(outcome)
    return devices


def _execute_ray(
    work: Sequence[WorkUnit],
    settings: dict[Path, Settings],
    address: str,
    options: BatchOptions,
    started: Callable[[WorkUnit, str], None],
    ended: Callable[[JobOutcome], None],
) -> list[str]:
    from clipswap_video.batch.ray_executor import run_on_ray

    run_on_ray(
        [(unit, settings[job_of(unit).output]) for unit in work],
        workers=options.workers,
        cpu_workers=default_cpu_workers(),
        address=address,
        weights_dir=options.weights_dir,
        on_start=started,
        on_outcome=ended,
    )
    return [f"ray:{address}"]


def _report(
    decisions: Sequence[Decision],
    manifest: Manifest | None,
    path: Path,
    options: BatchOptions,
    workers: list[str],
) -> BatchReport:
    """Every job as the manifest has it now (a dry run: as it had it) and its action."""
    rows = [
        _row(
            manifest.record(d.planned.job.output) if manifest else d.record,
            manifest.segments(d.planned.job.output) if manifest else [],
            d.planned.job,
            d.action,
        )
        for d in decisions
    ]
    executor = "ray" if options.ray is not None else "local"
    return BatchReport(path, rows, executor, workers, dry_run=options.dry_run)


def _dry_run(plan: Plan, options: BatchOptions) -> BatchReport:
    """The plan with what a real run would do, reading the manifest only."""
    if not plan.manifest.is_file():
        return _report(decide(plan.jobs, None, options), None, plan.manifest, options, [])
    manifest = Manifest(plan.manifest, read_only=True)
    try:
        return _report(decide(plan.jobs, manifest, options), None, plan.manifest, options, [])
    finally:
        manifest.close()


def _row(
    record: dict[str, Any] | None,
    segments: list[dict[str, Any]],
    job: VideoJob,
    action: str,
) -> dict[str, Any]:
    """A report row: the job's manifest record (less the settings TOML, which
    stays in the manifest), its segments' records while it is split (less their
    raw figures, merged into the job's at the join) and what this run did with it."""
    row = {key: value for key, value in (record or {"state": "new"}).items() if key != "settings"}
    if row.get("quality"):  # stored as JSON text
        row["quality"] = json.loads(row["quality"])
    if segments:
        row["segments"] = [
            {k: v for k, v in segment.items() if k not in ("output", "coverage", "quality")}
            for segment in segments
        ]
    return {
        **row,
        "input": str(job.input),
        "output": str(job.output),
        "sources": [str(source) for source in job.sources],
        "action": action,
    }


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputUnwritableError(f"cannot create folder {folder}: {error.strerror}") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes the report beside the manifest, atomically (temp file + rename)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


__all__ = ["BatchReport", "default_cpu_workers", "run_batch", "worker_devices"]
