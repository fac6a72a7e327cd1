"""Batch planning: the jobs of a folder or of a jobs file, checked before any work.

    plan_folder([src], Path("videos"), Path("out"))   # every video, tree mirrored
    plan_jobs_file(Path("jobs.toml"))                  # sources, input globs, options

Relative paths in a jobs file are relative to the file's folder. Everything
a user can get wrong (a key, a glob that matches nothing, a missing source,
two jobs writing one file) is one ConfigValueError line naming the job.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipswap_video._toml_config import read_toml
from clipswap_video.atomic import is_partial
from clipswap_video.batch.jobs import Plan, PlannedJob, VideoJob
from clipswap_video.errors import (
    ConfigValueError,
    InputNotFoundError,
    OutputPathError,
)
from clipswap_video.media.probe import VIDEO_SUFFIXES
from clipswap_video.media.trim import TimeRange
from clipswap_video.times import parse_time

_RANGE_KEYS = ("start", "end", "duration", "keep_timestamps")
_JOB_KEYS = {"source", "input", "output", "container", "set", *_RANGE_KEYS}
_DEFAULT_KEYS = {"source", "container", "set"}
_TOP_KEYS = {"manifest", "defaults", "job"}


def parse_sources(text: str) -> list[Path]:
    """SRC, or several photos of one person as `a.jpg,b.jpg` (an existing path
    with a comma in its name stays one path)."""
    if Path(text).exists() or "," not in text:
        return [Path(text)]
    return [Path(part) for part in text.split(",") if part]


def plan_folder(
    sources: Sequence[Path],
    in_dir: Path,
    out_dir: Path,
    container: str | None = None,
    *,
    allow_empty: bool = False,
) -> Plan:
    """One job per video under `in_dir` (or for `in_dir` itself, a file), each
    written to the same relative path under `out_dir`; with `allow_empty` (a
    watched folder) no video yet is no error."""
    in_dir, out_dir = _absolute([in_dir, out_dir])
    if not in_dir.exists():
        raise InputNotFoundError(f"input folder {in_dir} does not exist")
    if in_dir == out_dir:
        raise OutputPathError(f"OUT_DIR {out_dir} is IN_DIR; outputs never overwrite inputs")
    if out_dir.is_file():
        raise OutputPathError(f"OUT_DIR {out_dir} is a file; give a folder")
    base = in_dir.parent if in_dir.is_file() else in_dir
    videos = [in_dir] if in_dir.is_file() else _videos_under(in_dir, skip=out_dir)
    if not videos and not allow_empty:
        kinds = ", ".join(sorted(VIDEO_SUFFIXES))
        raise InputNotFoundError(f"no video files under {in_dir} (looked for {kinds})")
    suffix = _suffix(container, "--container")
    jobs = [
        PlannedJob(VideoJob(_absolute(sources), video, _mirrored(video, base, out_dir, suffix)))
        for video in videos
    ]
    _check(jobs)
    return Plan(jobs, out_dir / "clipswap-batch.sqlite")


def plan_jobs_file(path: Path, manifest: Path | None = None, *, allow_empty: bool = False) -> Plan:
    """The jobs of a TOML jobs file (format: docs/batch.md, configs/jobs.example.toml);
    with `allow_empty` (watched globs) a glob that matches nothing yet is no error."""
    table = read_toml(path, "jobs file")
    folder = _absolute([path])[0].parent
    _known_keys(table, _TOP_KEYS, f"{path}")
    defaults = _table(table.get("defaults", {}), f"{path}: [defaults]")
    _known_keys(defaults, _DEFAULT_KEYS, f"{path}: [defaults]")
    entries = table.get("job", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigValueError(f'{path}: no jobs; add [[job]] tables with input = "..."')
    jobs: list[PlannedJob] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: job {number}"
        entry = _table(entry, where)
        _known_keys(entry, _JOB_KEYS, where)
        jobs += _expand_job(
            {**defaults, **entry, "set": _settings_of(defaults, entry, where)},
            folder,
            where,
            allow_empty,
        )
    _check(jobs)
    named = table.get("manifest")
    if named is not None and not isinstance(named, str):
        raise ConfigValueError(f"{path}: manifest must be a path string")
    default = folder / f"{path.stem}.batch.sqlite"
    return Plan(jobs, manifest or (folder / named if named else default))


def _expand_job(
    entry: dict[str, Any], folder: Path, where: str, allow_empty: bool
) -> list[PlannedJob]:
    """The jobs of one [[job]]: one per file its glob matches."""
    sources = _sources_of(entry, folder, where)
    pattern = _absolute([folder / _string(entry, "input", where)])[0]
    output = _absolute([folder / _string(entry, "output", where)])[0]
    as_folder = str(entry["output"]).endswith("/") or output.suffix == "" or output.is_dir()
    inputs = [
        path
        for path in _absolute(sorted(glob.glob(str(pattern), recursive=True)))
        if path.is_file()
        and not is_partial(path)  # unfinished outputs
        and not (as_folder and path.is_relative_to(output))  # earlier outputs
    ]
    if not inputs and not allow_empty:
        raise InputNotFoundError(f"{where}: input {entry['input']!r} matches no file")
    if not as_folder and len(inputs) > 1:
        raise ConfigValueError(
            f"{where}: input {entry['input']!r} matches {len(inputs)} files but output "
            f"{output.name!r} is one file; end it with / for a folder"
        )
    suffix = _suffix(entry.get("container"), f"{where}: container")
    base = _glob_base(pattern)
    jobs = []
    for video in inputs:
        target = _mirrored(video, base, output, suffix) if as_folder else output
        job = VideoJob(
            sources, video, target.with_suffix(suffix or target.suffix), _time_range(entry, where)
        )
        jobs.append(PlannedJob(job, tuple(entry["set"]), where))
    return jobs


def _settings_of(defaults: dict[str, Any], entry: dict[str, Any], where: str) -> list[str]:
    """The [defaults] overrides, then the job's own (later ones win)."""
    overrides: list[str] = []
    for origin, table in ((f"{where} (from [defaults])", defaults), (where, entry)):
        value = table.get("set", [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigValueError(f'{origin}: set must be a list such as ["video.crf=20"]')
        overrides += value
    return overrides


def _sources_of(entry: dict[str, Any], folder: Path, where: str) -> tuple[Path, ...]:
    value = entry.get("source")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigValueError(
            f'{where}: source must be a photo path or a list of them, e.g. source = "face.jpg"'
        )
    return _absolute([folder / v for v in value])


def _videos_under(folder: Path, skip: Path) -> list[Path]:
    """Video files below `folder`, sorted; hidden entries, unfinished outputs
    (`*.partial.*`) and the output folder are left out."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.is_relative_to(skip):
            continue
        video = path.suffix.lower() in VIDEO_SUFFIXES and not is_partial(path)
        if video and path.is_file():
            found.append(path)
    return found


def _mirrored(video: Path, base: Path, out_dir: Path, suffix: str | None) -> Path:
    target = out_dir / video.relative_to(base)
    return target.with_suffix(suffix) if suffix else target


def _glob_base(pattern: Path) -> Path:
    """The folder part of a glob before its first wildcard (the mirror's root)."""
    parts = []
    for part in pattern.parts:
        if any(char in part for char in "*?["):
            break
        parts.append(part)
    base = Path(*parts)
    return base if len(parts) < len(pattern.parts) else base.parent


def _check(jobs: Sequence[PlannedJob]) -> None:
    """Every source exists; no two jobs write one output; no job writes its input."""
    seen: dict[Path, PlannedJob] = {}
    for planned in jobs:
        job, where = planned.job, f"{planned.origin}: " if planned.origin else ""
        for source in job.sources:
            if not source.is_file():
                raise InputNotFoundError(f"{where}source photo {source} does not exist")
        # Compared as real paths: through a symlinked file or folder it is the same file.
        target = Path(os.path.realpath(job.output))
        if target == Path(os.path.realpath(job.input)):
            raise OutputPathError(f"{where}output {job.output} is the input")
        if target in seen:
            raise ConfigValueError(
                f"{where}{job.input} and {seen[target].job.input} both write {job.output}"
            )
        seen[target] = planned


def _suffix(container: object, where: str) -> str | None:
    if container is None:
        return None
    if not isinstance(container, str) or not container.strip(".").isalnum():
        raise ConfigValueError(f"{where} must be a file extension such as mp4 or mkv")
    return "." + container.strip(".").lower()


def _time_range(entry: dict[str, Any], where: str) -> TimeRange | None:
    """A job's `start`, `end` or `duration` (seconds, or "H:MM:SS.mmm") and
    `keep_timestamps`, as the swap command's flags take them."""
    if not any(key in entry for key in _RANGE_KEYS):
        return None
    if "end" in entry and "duration" in entry:
        raise ConfigValueError(f"{where}: give end or duration, not both")
    times = {}
    for key in ("start", "end", "duration"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigValueError(f'{where}: {key} is seconds or "H:MM:SS.mmm"')
        times[key] = parse_time(str(value), f"{where}: {key}")
    keep = entry.get("keep_timestamps", False)
    if not isinstance(keep, bool):
        raise ConfigValueError(f"{where}: keep_timestamps is true or false")
    start = times.get("start", 0.0)
    end = times.get("end")
    if "duration" in times:
        end = start + times["duration"]
    try:
        return TimeRange(start, end, keep)
    except ConfigValueError as error:
        raise ConfigValueError(f"{where}: {error}") from None


def _absolute(paths: Sequence[Path | str]) -> tuple[Path, ...]:
    """Absolute and normalised (`a/../b` is `b`): outputs are compared and keyed by it."""
    return tuple(Path(os.path.abspath(path)) for path in paths)


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigValueError(f"{where} must be a table")
    return value


def _known_keys(table: dict[str, Any], valid: set[str], where: str) -> None:
    unknown = sorted(set(table) - valid)
    if unknown:
        raise ConfigValueError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(valid))}"
        )


def _string(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigValueError(f'{where}: {key} must be a path string, e.g. {key} = "..."')
    return value


__all__ = ["parse_sources", "plan_folder", "plan_jobs_file"]
