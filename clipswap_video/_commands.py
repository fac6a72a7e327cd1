"""Handlers of the report-style commands: evaluate, doctor, probe, demo-media, bench.

Each takes the parsed arguments and the console and returns an exit code;
`cli.main` turns their errors into one line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

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
        neural_seconds=args.neural_seconds,
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


__all__ = [
    "run_bench",
    "run_demo_media",
    "run_doctor",
    "run_evaluate",
    "run_probe",
    "run_weights",
]
