"""Handlers of the report-style commands: batch, evaluate, doctor, probe, demo-media, bench.

Each takes the parsed arguments and the console and returns an exit code;
`cli.main` turns their errors into one line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clipswap_video._console import progress
from clipswap_video.config import load_settings
from clipswap_video.errors import (
    ConfigValueError,
    CorruptWeightsError,
    ExitCode,
    MissingWeightsError,
)

if TYPE_CHECKING:
    from clipswap_video.batch import BatchReport, JobOutcome


def run_batch(args: argparse.Namespace, console: Console, overrides: list[str]) -> int:
    """`batch SRC IN_DIR OUT_DIR` or `batch JOBS.toml`; `overrides` (--set and
    the flags) apply to every job."""
    import dataclasses

    from clipswap_video.batch import BatchOptions, parse_sources, plan_folder, plan_jobs_file
    from clipswap_video.batch import run_batch as run

    if len(args.targets) not in (1, 3):
        args.usage_error("batch takes SRC IN_DIR OUT_DIR, or one JOBS.toml file")
    if args.ray_shortcut is not None:  # --ray ADDR, as in `batch jobs.toml --ray auto`
        if args.executor != "local" or args.ray_address is not None:
            raise ConfigValueError("give --ray ADDR alone, or --executor ray --ray-address ADDR")
        args.executor = "ray"
        args.ray_address = None if args.ray_shortcut == "local" else args.ray_shortcut
    if args.workers is not None and args.workers < 1:
        raise ConfigValueError(f"--workers {args.workers}: give 1 or more")
    if args.devices and args.executor == "ray":
        raise ConfigValueError("--devices is for local workers; with Ray give --workers N")
    if len(args.targets) == 1:
        if args.container:
            raise ConfigValueError("--container is for folders; in a jobs file write container =")
        plan = plan_jobs_file(Path(args.targets[0]), args.manifest)
    else:
        source, in_dir, out_dir = args.targets
        plan = plan_folder(parse_sources(source), Path(in_dir), Path(out_dir), args.container)
        plan = dataclasses.replace(plan, manifest=args.manifest or plan.manifest)
    options = BatchOptions(
        config=args.config, overrides=tuple(overrides), weights_dir=args.weights,
        executor=args.executor, workers=args.workers, devices=args.devices,
        ray_address=args.ray_address, retry_failed=args.retry_failed, force=args.force,
        dry_run=args.dry_run,
    )  # fmt: skip
    loud = not (args.quiet or args.json)
    report = run(plan, options, on_outcome=(lambda o: _job_line(console, o)) if loud else None)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    elif not args.quiet:
        console.print(_batch_table(report))
    return int(report.exit_code)


def _job_line(console: Console, outcome: JobOutcome) -> None:
    """One line per finished job, as it finishes (render farm logs are not TTYs)."""
    job = outcome.job
    if outcome.ok:
        line = (f"[green]done[/] {escape(str(job.output))}: {outcome.frames} frames in "
                f"{outcome.elapsed_s:.1f} s on {escape(outcome.device)}")  # fmt: skip
    else:
        line = f"[red]failed[/] {escape(str(job.input))}: {escape(str(outcome.error))}"
    console.print(line, soft_wrap=True)


def _batch_table(report: BatchReport) -> Table:
    """The rich table printed at the end of a batch (or of --dry-run); the
    error line of each failed job is in its caption, whole."""
    counts = report.counts()
    if report.dry_run:
        title = f"batch plan: {counts['ran']} to run, {counts['skipped']} to skip"
    else:
        title = "batch: " + ", ".join(f"{n} {key}" for key, n in counts.items() if n)
    table = Table(title=title, caption_justify="left")
    for column in ("state", "input", "output", "frames", "time", "device", "action"):
        table.add_column(column, overflow="fold")
    styles = {"done": "green", "failed": "red"}
    for job in report.jobs:
        seconds = job.get("wall_s")
        table.add_row(
            f"[{styles.get(job['state'], 'yellow')}]{job['state']}[/]",
            escape(_short_path(job["input"])), escape(_short_path(job["output"])),
            str(job.get("frames") or ""), f"{seconds:.1f} s" if seconds is not None else "",
            escape(job.get("device") or ""), job["action"],
        )  # fmt: skip
    errors = [f"{_short_path(job['input'])}: {job['error']}" for job in report.jobs
              if job.get("error")]  # fmt: skip
    table.caption = escape("\n".join([*errors, f"manifest: {report.manifest}"]))
    return table


def _short_path(path: str) -> str:
    """A path relative to the working folder when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def run_evaluate(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.evaluate import evaluate

    settings = load_settings(args.config)
    with progress(console, enabled=not (args.quiet or args.json), label="evaluating") as (
        on_start, on_progress,
    ):  # fmt: skip
        results = evaluate(
            args.source, args.input, args.output, settings, samples=args.samples,
            on_start=on_start, on_frame=lambda: on_progress(1),
        )  # fmt: skip
    if args.json:
        print(json.dumps(results))
    elif not args.quiet:
        table = Table(title=f"evaluate {args.output}")
        table.add_column("measure")
        table.add_column("value")
        for key, value in results.items():
            table.add_row(key, "n/a" if value is None else str(value))
        console.print(table)
    return ExitCode.OK


def run_doctor(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.doctor import collect

    report = collect(args.weights)
    if args.json:
        print(json.dumps(report, indent=2))
        return ExitCode.OK
    console.print(_doctor_table(report))
    return ExitCode.OK


def _doctor_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"clipswap-video {report['clipswap_video']}", show_header=False)
    torch = report["torch"]
    cuda = "yes: " + ", ".join(torch["devices"]) if torch["cuda"] else "no"
    encoders = [name if ok else f"{name} (missing)" for name, ok in report["encoders"].items()]
    clip = report["clip"]
    clip_line = (
        f"open_clip {clip['open_clip']}, torchvision {clip['torchvision']} "
        f"({clip['torchvision_ops']} ops)"
        if clip["open_clip"]
        else f"[red]{clip['error']}"
    )
    rows = [
        ("python", report["python"]), ("platform", report["platform"]),
        ("torch", f"{torch['version']} (CUDA {cuda})"),
        ("CLIP", clip_line),
        ("PyAV / FFmpeg", f"{report['av']} / libavcodec {report['ffmpeg']['libavcodec']}"),
        ("encoders", ", ".join(encoders)),
        ("hw devices", ", ".join(report["hw_devices"]) or "none"),
        ("dlib face models", report["faces"]["dlib_models"] or "[red]missing"),
        ("onnxruntime", ", ".join(report["faces"]["onnxruntime_providers"]) or "not installed"),
        ("weights searched", ", ".join(report["weights_search"])),
    ]  # fmt: skip
    rows += [
        (f"weights: {name}", path or "[dim]not found[/]")
        for name, path in report["weights"].items()
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def run_probe(args: argparse.Namespace, console: Console) -> int:
    import dataclasses

    from clipswap_video.media import probe

    info = dataclasses.asdict(probe(args.input, count_frames=args.count_frames))
    text = json.dumps(info, indent=2, default=str)
    print(text) if args.json else console.print_json(text)
    return ExitCode.OK


def run_demo_media(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.demo import write_demo_media

    try:
        media = write_demo_media(
            args.directory, seconds=args.seconds, width=args.width, height=args.height, fps=args.fps
        )
    except ValueError as error:
        raise ConfigValueError(f"demo-media: {error}") from None
    if not args.quiet:
        for path in (media.source_image, media.video, media.landmarks):
            console.print(f"wrote {escape(str(path))}", soft_wrap=True)
    return ExitCode.OK


def run_bench(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.bench import BenchOptions, neural_figures, print_table, run_bench
    from clipswap_video.bench_models import NeuralOptions

    neural = NeuralOptions(
        device=args.device, precision=args.precision, batch_size=args.batch_size,
        channels_last=args.channels_last, codec=args.codec,
    )  # fmt: skip
    options = BenchOptions(
        work_dir=args.work_dir, seconds=args.seconds, long_seconds=args.long_seconds,
        width=args.width, height=args.height, neural=neural,
        neural_seconds=args.neural_seconds, batch_clips=args.batch_clips,
        batch_seconds=args.batch_seconds,
    )  # fmt: skip
    say = None if args.json or args.quiet else console
    if args.neural_only:
        with tempfile.TemporaryDirectory(prefix="clipswap-bench-") as scratch:
            results = neural_figures(args.work_dir or Path(scratch), options, say)
    else:
        results = run_bench(options, console=say)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results, console)
    return ExitCode.OK


def run_weights(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.fetch import default_folder, entry_named, fetch, verify
    from clipswap_video.weights import load_manifest

    if args.action == "convert":
        return _convert(args, console)
    entries = load_manifest(args.manifest)
    chosen = [entry_named(entries, name) for name in args.names] if args.names else entries
    if args.action == "fetch":
        if len(chosen) != 1 or not args.names:
            raise ConfigValueError("weights fetch takes exactly one NAME")
        path = fetch(chosen[0], default_folder(args.weights), url=args.url, sha256=args.sha256)
        console.print(f"fetched {escape(str(path))} (sha256 verified)", soft_wrap=True)
        return ExitCode.OK
    checks = [verify(e, args.weights, hash_file=args.action == "verify") for e in chosen]
    if args.action == "verify" and args.names:
        missing = [c.entry.name for c in checks if c.status == "missing"]
        if missing:
            raise MissingWeightsError(f"not found in any weights folder: {', '.join(missing)}")
    rows = [
        {"name": c.entry.name, "file": c.entry.file, "status": c.status,
         "path": str(c.path) if c.path else None, "sha256": c.sha256,
         "preprocessing": c.entry.preprocessing}
        for c in checks
    ]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_weights(rows, console)
    bad = [c.entry.name for c in checks if c.status == "mismatch"]
    if args.action == "verify" and bad:
        raise CorruptWeightsError(f"sha256 mismatch: {', '.join(bad)}; fetch them again")
    return ExitCode.OK


def _convert(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.models.convert import convert
    from clipswap_video.models.keras_h5 import describe

    if len(args.names) != 2:
        raise ConfigValueError("weights convert takes SRC.h5 DST.safetensors")
    source, target = Path(args.names[0]), Path(args.names[1])
    report = describe(convert(source, target, args.model_json))
    if args.json:
        print(json.dumps(report))
    else:
        inputs = ", ".join(str(shape) for shape in report["inputs"])
        console.print(
            f"wrote {escape(str(target))}: {report['kind']}, inputs {inputs}, "
            f"{report['parameters']:,} parameters",
            soft_wrap=True,
        )
    return ExitCode.OK


def _print_weights(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="weights")
    for column in ("name", "file", "status", "path"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["file"], row["status"], row["path"] or "")
    console.print(table)


def run_train(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.train.command import flag_overrides, train

    overrides = [*args.overrides, *flag_overrides(args.data, args.out, args.steps, args.device)]
    return train(args.config, overrides, console, quiet=args.quiet,
                 export_only=args.export_only, weights_dir=args.weights)  # fmt: skip


__all__ = [
    "run_batch",
    "run_bench",
    "run_demo_media",
    "run_doctor",
    "run_evaluate",
    "run_probe",
    "run_train",
    "run_weights",
]
