"""`clipswap-video weights list|verify|fetch|convert`: the model files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clipswap_video.cli.flags import add_loudness
from clipswap_video.errors import (
    AmbiguousWeightsError,
    ConfigValueError,
    CorruptWeightsError,
    ExitCode,
    MissingWeightsError,
)
from clipswap_video.weights import load_manifest, looked_for, search_folders

if TYPE_CHECKING:  # fetch is imported when a command runs, as in `run`
    from clipswap_video.fetch import Verification


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("weights", help="list, verify, fetch or convert weight files")
    parser.add_argument("action", choices=["list", "verify", "fetch", "convert"])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="manifest names; convert: SRC.h5 DST.safetensors"
    )
    parser.add_argument(
        "--model-json",
        type=Path,
        metavar="FILE",
        help="convert: the JSON config of a weights-only .h5",
    )
    parser.add_argument("--weights", type=Path, metavar="DIR", help="weights folder")
    parser.add_argument("--manifest", type=Path, metavar="FILE", help="another manifest.toml")
    parser.add_argument("--url", help="fetch: download address (overrides the manifest)")
    parser.add_argument("--sha256", help="fetch: expected hash when the manifest has none")
    parser.add_argument("--json", action="store_true", help="list/verify: one JSON object")
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.fetch import default_folder, entry_named, fetch, verify

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
    rows = [_row(check, args.weights) for check in checks]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        searched = ", ".join(folder.label for folder in search_folders(args.weights))
        _print_table(rows, f"searched in this order: {searched}", console)
    if args.action == "verify":
        _raise_for_bad(checks)
    return ExitCode.OK


def _row(check: Verification, weights_dir: Path | None) -> dict[str, Any]:
    """One file's line: what was picked and why (the search folder and the location
    it matched), the conflict that stops a pick, or where it was looked for."""
    found = check.found
    why = (
        found.why
        if found
        else check.conflict or f"looked for {looked_for(check.entry, weights_dir)}"
    )
    return {
        "name": check.entry.name,
        "file": check.entry.file,
        "status": check.status,
        "path": str(check.path) if check.path else None,
        "folder": str(found.folder.path) if found else None,
        "origin": found.folder.origin if found else None,
        "location": found.location if found else None,
        "why": why,
        "sha256": check.sha256,
        "preprocessing": check.entry.preprocessing,
    }


def _raise_for_bad(checks: list[Verification]) -> None:
    """verify fails on a conflict, then on a hash mismatch, after printing every line."""
    conflicts = [check.conflict for check in checks if check.status == "conflict"]
    if conflicts:
        raise AmbiguousWeightsError(
            conflicts[0] + (f" (and {len(conflicts) - 1} more)" if conflicts[1:] else "")
        )
    bad = [check.entry.name for check in checks if check.status == "mismatch"]
    if bad:
        raise CorruptWeightsError(f"sha256 mismatch: {', '.join(bad)}; fetch them again")


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


def _print_table(rows: list[dict[str, Any]], caption: str, console: Console) -> None:
    table = Table(title="weights", caption=caption)
    for column in ("name", "file", "status", "path", "why"):
        table.add_column(column, overflow="fold")  # a path cut short with "…" says nothing
    for row in rows:
        table.add_row(
            row["name"], row["file"], row["status"], escape(row["path"] or ""), escape(row["why"])
        )
    console.print(table)


__all__ = ["add_parser", "run"]
