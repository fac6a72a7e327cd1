"""`clipswap-video batch SRC IN_DIR OUT_DIR` or `batch JOBS.toml`: many videos, resumable."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clipswap_video.cli.flags import add_loudness, add_settings, add_swap_flags, settings_overrides
from clipswap_video.errors import (
    ConfigValueError,
    ExitCode,
    OutputPathError,
    OutputUnwritableError,
)
from clipswap_video.faces.coverage import coverage_summary

if TYPE_CHECKING:
    from clipswap_video.batch import BatchOptions, BatchReport, JobOutcome, Plan


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "batch",
        help="swap every video of a folder, or the jobs of a jobs file; resumable",
        usage="%(prog)s SRC IN_DIR OUT_DIR [options]\n       %(prog)s JOBS.toml [options]",
    )
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="a source photo, an input folder and an output folder (tree mirrored), "
        "or a TOML jobs file",
    )
    add_settings(parser)
    add_swap_flags(parser)
    parser.add_argument(
        "--container", metavar="EXT", help="folder mode: output container (default: the input's)"
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="job manifest (default: OUT_DIR/clipswap-batch.sqlite)",
    )
    placement = parser.add_mutually_exclusive_group()
    placement.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: 1 per GPU, else per core)",
    )
    placement.add_argument(
        "--devices", metavar="LIST", help="one worker per entry, e.g. cuda:0,cuda:1 or cpu*2"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDR",
        help="run the jobs on Ray actors: no ADDR starts a Ray for this batch, "
        "auto joins the running cluster, or ray://HOST:PORT",
    )
    parser.add_argument("--retry-failed", action="store_true", help="run failed jobs again")
    parser.add_argument("--force", action="store_true", help="run every job again")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="keep running: take each new video once it stops growing "
        "(batch.settle_seconds); Ctrl-C or SIGTERM stops",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write a quality report page: per video, the face at its worst "
        "moment, identity and flicker over time, flagged time ranges",
    )
    add_loudness(parser)
    parser.set_defaults(handler=run, usage_error=parser.error)


def run(args: argparse.Namespace, console: Console) -> int:
    """Plans the batch, runs it and prints the report; --set and the flags apply
    to every job."""
    from clipswap_video.batch import BatchOptions, parse_sources, plan_folder, plan_jobs_file
    from clipswap_video.batch import run_batch as run_plan

    if len(args.targets) not in (1, 3):
        args.usage_error("batch takes SRC IN_DIR OUT_DIR, or one JOBS.toml file")
    if args.workers is not None and args.workers < 1:
        raise ConfigValueError(f"--workers {args.workers}: give 1 or more")
    if args.ray is not None and not _is_ray_address(args.ray):
        raise ConfigValueError(
            f"--ray {args.ray}: not a Ray address; give none, auto, HOST:PORT or ray://HOST:PORT"
        )
    if args.devices and args.ray is not None:
        raise ConfigValueError("--devices is for local workers; with Ray give --workers N")
    if args.report is not None:
        _check_report_path(args.report)
    if args.watch and args.dry_run:
        raise ConfigValueError("--dry-run shows one plan; it cannot --watch")
    if len(args.targets) == 1 and args.container:
        raise ConfigValueError("--container is for folders; in a jobs file write container =")

    def plan_pass() -> Plan:
        if len(args.targets) == 1:
            return plan_jobs_file(Path(args.targets[0]), args.manifest, allow_empty=args.watch)
        source, in_dir, out_dir = args.targets
        plan = plan_folder(
            parse_sources(source), Path(in_dir), Path(out_dir), args.container,
            allow_empty=args.watch,
        )  # fmt: skip
        return dataclasses.replace(plan, manifest=args.manifest or plan.manifest)

    options = BatchOptions(
        config=args.config,
        mode=args.mode,
        overrides=tuple(settings_overrides(args)),
        weights_dir=args.weights,
        workers=args.workers,
        devices=args.devices,
        ray=args.ray,
        retry_failed=args.retry_failed,
        force=args.force,
        dry_run=args.dry_run,
    )
    loud = not (args.quiet or args.json)
    on_outcome = (lambda o: _job_line(console, o)) if loud else None
    if args.watch:
        return _watch(args, console, plan_pass, options, on_outcome)
    report = run_plan(plan_pass(), options, on_outcome=on_outcome)
    if args.report is not None:
        _write_report(report, args.report)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    elif not args.quiet:
        console.print(_table(report))
    return int(report.exit_code)


def _watch(
    args: argparse.Namespace,
    console: Console,
    plan_pass: Callable[[], Plan],
    options: BatchOptions,
    on_outcome: Callable[[JobOutcome], None] | None,
) -> int:
    """Runs the batch as a watch until Ctrl-C or SIGTERM; says what it did."""
    from clipswap_video.batch.watch import watch_batch
    from clipswap_video.config import load_settings

    settle = load_settings(args.config, list(options.overrides), args.mode).batch.settle_seconds
    where = args.targets[0] if len(args.targets) == 1 else args.targets[1]
    if not (args.quiet or args.json):
        console.print(
            f"watching {escape(where)}: a new video is taken once unchanged for {settle:g} s; "
            "Ctrl-C stops",
            soft_wrap=True,
        )
    on_pass = None if args.report is None else (lambda report: _write_report(report, args.report))
    summary = watch_batch(plan_pass, options, settle, on_outcome=on_outcome, on_pass=on_pass)
    counts = summary.counts()
    manifests = sorted({str(report.manifest) for report in summary.reports})
    if args.json:
        print(json.dumps({"passes": summary.passes, "counts": counts, "manifests": manifests}))
    elif not args.quiet:
        console.print(
            f"stopped watching: {counts['done']} done, {counts['failed']} failed in "
            f"{summary.passes} pass(es)"
            + (f"; manifest {escape(manifests[0])}" if manifests else ""),
            soft_wrap=True,
        )
    return int(ExitCode.INTERRUPTED)


def _check_report_path(path: Path) -> None:
    """Before any job runs: the report's folder exists (made if missing, as the
    output folder is: `--report OUT_DIR/report.html`) and can be written."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputPathError(f"--report {path} is a folder; give a file such as report.html")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputUnwritableError(
            f"--report {path}: cannot create {folder}: {error.strerror}"
        ) from None
    if not os.access(folder, os.W_OK):
        raise OutputUnwritableError(f"--report {path}: cannot write in {folder}")


def _write_report(report: BatchReport, path: Path) -> None:
    from clipswap_video.batch.qc_report import write_html_report

    try:
        write_html_report(report, path)
    except OSError as error:
        raise OutputUnwritableError(f"cannot write the report {path}: {error.strerror}") from None


def _is_ray_address(text: str) -> bool:
    """`local`, `auto` or an address with a port: anything else is most likely a
    target that `--ray` took for its ADDR (`batch --ray jobs.toml`)."""
    return text in ("local", "auto") or ":" in text


def _job_line(console: Console, outcome: JobOutcome) -> None:
    """One line per finished job, as it finishes (render farm logs are not TTYs)."""
    job = outcome.job
    if outcome.ok:
        faces = _faces(outcome.coverage)
        line = (
            f"[green]done[/] {escape(str(job.output))}: {outcome.frames} frames{faces}, in "
            f"{outcome.elapsed_s:.1f} s on {escape(outcome.device)}"
        )
    else:
        line = f"[red]failed[/] {escape(str(job.input))}: {escape(str(outcome.error))}"
    console.print(line, soft_wrap=True)


def _table(report: BatchReport) -> Table:
    """The rich table printed at the end of a batch (or of --dry-run); the
    error line of each failed job is in its caption, whole."""
    counts = report.counts()
    if report.dry_run:
        title = f"batch plan: {counts['ran']} to run, {counts['skipped']} to skip"
    else:
        title = "batch: " + ", ".join(f"{n} {key}" for key, n in counts.items() if n)
    table = Table(title=title, caption_justify="left")
    columns = ("state", "input", "output", "frames", "faces swapped", "time", "device", "action")
    for column in columns:
        table.add_column(column, overflow="fold")
    for job in report.jobs:
        table.add_row(*_row(job))
    errors = [
        f"{_short_path(job['input'])}: {job['error']}" for job in report.jobs if job.get("error")
    ]
    table.caption = escape("\n".join([*errors, f"manifest: {report.manifest}"]))
    return table


def _row(job: dict[str, Any]) -> list[str]:
    style = {"done": "green", "failed": "red"}.get(job["state"], "yellow")
    seconds = job.get("wall_s")
    return [
        f"[{style}]{job['state']}[/]",
        escape(_short_path(job["input"])),
        escape(_short_path(job["output"])),
        str(job.get("frames") or ""),
        _swapped_cell(job),
        f"{seconds:.1f} s" if seconds is not None else "",
        escape(job.get("device") or ""),
        job["action"],
    ]


def _faces(coverage: dict[str, int] | None) -> str:
    """`, faces swapped in 288 (...)`, as the swap command says it."""
    if coverage is None:
        return ""
    return ", " + coverage_summary(coverage["frames_swapped"], coverage["frames_missed"])


def _swapped_cell(job: dict[str, Any]) -> str:
    """`288` (or `0!` when nothing was swapped in a finished job), blank when not known."""
    swapped = job.get("frames_swapped")
    if swapped is None:
        return ""
    return f"[yellow]{swapped}!" if swapped == 0 and job["state"] == "done" else str(swapped)


def _short_path(path: str) -> str:
    """A path relative to the working folder when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


__all__ = ["add_parser", "run"]
