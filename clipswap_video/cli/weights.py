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
from clipswap_video.weights import (
    ROLES,
    WeightEntry,
    entry_named,
    load_manifest,
    looked_for,
    search_folders,
)

if TYPE_CHECKING:  # digests and verification are imported when a command runs, as in `run`
    from clipswap_video.digests import SidecarCheck
    from clipswap_video.verification import Verification

HASH_WORDS = {
    "matches": "matches",
    "mismatch": "MISMATCH",
    "unknown": "unknown (none published)",
    "converted": "converted from the .h5 (its published hash is the .h5's)",
    "folder": "a folder: not hashed",
    "skipped": "not hashed (--no-hash)",
}
"""The table's words for each `sha256_status` of --json."""


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
    parser.add_argument(
        "--no-hash", action="store_true", help="list: only where each file is, without reading it"
    )
    add_loudness(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.digests import HashCache, hash_cache_file
    from clipswap_video.fetch import default_folder, fetch
    from clipswap_video.verification import verify

    if args.action == "convert":
        return _convert(args, console)
    if args.no_hash and args.action != "list":
        raise ConfigValueError(f"--no-hash is for weights list; weights {args.action} reads files")
    entries = load_manifest(args.manifest)
    chosen = [entry_named(entries, name) for name in args.names] if args.names else entries
    if args.action == "fetch":
        if len(chosen) != 1 or not args.names:
            raise ConfigValueError("weights fetch takes exactly one NAME")
        path = fetch(chosen[0], default_folder(args.weights), url=args.url, sha256=args.sha256)
        console.print(f"fetched {escape(str(path))} (sha256 verified)", soft_wrap=True)
        return ExitCode.OK
    verifying = args.action == "verify"
    # list trusts a cached hash of an unchanged file; verify reads every file again
    hashes = HashCache(hash_cache_file(), reuse=not verifying)
    checks = [
        verify(entry, args.weights, hash_file=verifying or not args.no_hash, hashes=hashes)
        for entry in _by_role(chosen)
    ]
    hashes.save()
    if verifying and args.names:
        missing = [c.entry.name for c in checks if c.status == "missing"]
        if missing:
            raise MissingWeightsError(f"not found in any weights folder: {', '.join(missing)}")
    rows = [_row(check, args.weights, verifying) for check in checks]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        searched = ", ".join(folder.label for folder in search_folders(args.weights))
        _print_table(rows, f"searched in this order: {searched}", console, args.verbose)
        for line in _auto_lines(args.weights):  # not the caption: that wraps at the table's width
            console.print(escape(line), soft_wrap=True)
    if verifying:
        _raise_for_bad(checks)
    return ExitCode.OK


def _by_role(entries: list[WeightEntry]) -> list[WeightEntry]:
    """Grouped by role in the order of ROLES, the manifest's order within a role."""
    return sorted(entries, key=lambda entry: ROLES.index(entry.role))


def _row(check: Verification, weights_dir: Path | None, verifying: bool) -> dict[str, Any]:
    """One file's line: what was picked and why (the search folder and the location
    it matched), the conflict that stops a pick, or where it was looked for; its
    SHA-256 against the manifest's and its CRC32 against FaceFusion's `.hash`."""
    found = check.found
    why = (
        found.why
        if found
        else check.conflict or f"looked for {looked_for(check.entry, weights_dir)}"
    )
    # list's status says whether the file is there; the hash verdict has its own key
    status = check.status if verifying or check.path is None else "found"
    return {
        "role": check.entry.role,
        "name": check.entry.name,
        "file": check.entry.file,
        "status": status,
        "path": str(check.path) if check.path else None,
        "folder": str(found.folder.path) if found else None,
        "origin": found.folder.origin if found else None,
        "location": found.location if found else None,
        "why": check.unreadable or why,
        "sha256": check.sha256,
        "sha256_status": check.hash_status,
        "manifest_sha256": check.entry.sha256 or None,
        "facefusion_hash": _sidecar_row(check.facefusion),
        "preprocessing": check.entry.preprocessing,
    }


def _sidecar_row(check: SidecarCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "path": str(check.path),
        "status": check.status,
        "crc32": check.actual,
        "expected": check.expected,
        "problem": check.problem or None,
    }


def _auto_lines(weights_dir: Path | None) -> list[str]:
    """What a job with the default settings loads from these folders: the
    swapper `--swapper auto` picks and its files, and the detector it brings.
    The backends (and torch) are imported here, not when the CLI starts."""
    from clipswap_video.config_sections import FaceSettings
    from clipswap_video.faces.backends import resolve_detector
    from clipswap_video.swap.choice import (
        find_clipswap_weights,
        find_inswapper_weights,
        resolve_swapper,
    )

    try:
        swapper, fallback = resolve_swapper("auto", weights_dir)
        detector, reason = resolve_detector(FaceSettings(), swapper, weights_dir)
        files = {"clipswap": find_clipswap_weights, "inswapper": find_inswapper_weights}
        pair = files[swapper](weights_dir) if swapper in files else None
    except AmbiguousWeightsError as error:
        return [f"--swapper auto stops: {error}"]
    if pair is not None:
        swapper_line = f"--swapper auto: {swapper}, swapper {pair[0]}, identity {pair[1]}"
    else:
        swapper_line = f"--swapper auto: {fallback}"
    return [swapper_line, f"--detector auto: {detector} ({reason})"]


def _raise_for_bad(checks: list[Verification]) -> None:
    """verify fails on a conflict, then on a file it cannot read or whose hash
    (SHA-256 or FaceFusion's CRC32) differs, after printing every line."""
    conflicts = [check.conflict for check in checks if check.status == "conflict"]
    if conflicts:
        raise AmbiguousWeightsError(
            conflicts[0] + (f" (and {len(conflicts) - 1} more)" if conflicts[1:] else "")
        )
    problems = []
    unreadable = [check.unreadable for check in checks if check.status == "unreadable"]
    if unreadable:
        problems.append("; ".join(unreadable))
    bad = [check.entry.name for check in checks if check.status == "mismatch"]
    if bad:
        problems.append(f"sha256 mismatch: {', '.join(bad)}")
    crc_bad = [
        check.entry.name
        for check in checks
        if check.facefusion is not None and check.facefusion.status == "mismatch"
    ]
    if crc_bad:
        problems.append(f"CRC32 mismatch with FaceFusion's .hash: {', '.join(crc_bad)}")
    if problems:
        raise CorruptWeightsError(f"{'; '.join(problems)}; fetch them again")


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


def _print_table(rows: list[dict[str, Any]], caption: str, console: Console, verbose: bool) -> None:
    """One short line per entry: the file found (or missing, or what stops a pick)
    and its hashes, shortened; `-v` adds why each was picked or where it was looked
    for, and the whole hashes (--json has everything)."""
    table = Table(title="weights", caption=caption, caption_justify="left")
    sidecars = any(row["facefusion_hash"] for row in rows)  # only FaceFusion's folders
    columns = ["role", "name", "file", "sha256"]
    columns += ["FaceFusion .hash"] if sidecars else []
    for column in [*columns, "why"] if verbose else columns:
        table.add_column(column, overflow="fold")  # a path cut short with "…" says nothing
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        cells = [row["role"], row["name"], escape(_file_cell(row)), _hash_cell(row, verbose)]
        cells += [_sidecar_cell(row["facefusion_hash"])] if sidecars else []
        table.add_row(
            *cells,
            *([escape(row["why"])] if verbose else []),
            end_section=following is not None and following["role"] != row["role"],
        )
    console.print(table)


def _file_cell(row: dict[str, Any]) -> str:
    if row["status"] in ("conflict", "unreadable"):
        return f"{row['status']}: {row['why']}"
    return row["path"] or f"missing ({row['file']})"


def _hash_cell(row: dict[str, Any], whole: bool) -> str:
    status, digest = row["sha256_status"], row["sha256"]
    if status is None:
        return ""
    words = HASH_WORDS[status]
    if not digest:
        return words
    return f"{words}: {digest if whole else digest[:12] + '…'}"


def _sidecar_cell(sidecar: dict[str, Any] | None) -> str:
    if sidecar is None:
        return ""
    words = {
        "matches": "matches FaceFusion's .hash",
        "mismatch": f"MISMATCH with FaceFusion's .hash ({sidecar['expected']})",
        "unreadable": f"FaceFusion's .hash is {sidecar['problem']}",
        "skipped": "not checked (--no-hash)",
    }
    return escape(words[sidecar["status"]])


__all__ = ["add_parser", "run"]
