"""`clipswap-video doctor`: versions, devices, encoders and weights found."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clipswap_video.cli.flags import add_loudness
from clipswap_video.errors import ExitCode


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("doctor", help="versions, devices, encoders, weights")
    parser.add_argument("--weights", type=Path, metavar="DIR", help="extra weights folder")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.reports.doctor import collect

    report = collect(args.weights)
    if args.json:
        print(json.dumps(report, indent=2))
        return ExitCode.OK
    console.print(_table(report))
    return ExitCode.OK


def _table(report: dict[str, Any]) -> Table:
    table = Table(title=f"clipswap-video {report['clipswap_video']}", show_header=False)
    for key, value in _rows(report):
        table.add_row(key, value)
    return table


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
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
    enhancers = report["enhancers"]
    codeformer = enhancers["spandrel_extra_arches"]
    enhancer_line = f"spandrel {enhancers['spandrel'] or '[red]missing[/]'}; CodeFormer " + (
        f"spandrel_extra_arches {codeformer}" if codeformer else "not installed (extra)"
    )
    faces = report["faces"]
    by_role = report["found_by_role"]
    rows = [
        ("python", report["python"]),
        ("platform", report["platform"]),
        ("torch", f"{torch['version']} (CUDA {cuda})"),
        ("CLIP", clip_line),
        ("enhancers", enhancer_line),
        ("enhancer files", ", ".join(by_role["enhancer"]) or "[dim]none found[/]"),
        ("mask files", ", ".join(by_role["mask"]) or "[dim]none found[/]"),
        ("PyAV / FFmpeg", f"{report['av']} / libavcodec {report['ffmpeg']['libavcodec']}"),
        ("encoders", ", ".join(encoders)),
        ("hw devices", ", ".join(report["hw_devices"]) or "none"),
        ("dlib face models", faces["dlib_models"] or "[red]missing"),
        ("onnxruntime", ", ".join(faces["onnxruntime_providers"]) or "not installed"),
        ("weights searched", ", ".join(report["weights_search"])),
    ]
    conflicts = report["weights_conflicts"]
    return rows + [
        (f"weights: {name}", _weight_cell(path, conflicts.get(name)))
        for name, path in report["weights"].items()
    ]


def _weight_cell(path: str | None, conflict: str | None) -> str:
    if conflict:
        return f"[red]{escape(conflict)}[/]"
    return escape(path) if path else "[dim]not found[/]"


__all__ = ["add_parser", "run"]
