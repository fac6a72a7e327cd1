"""The batch manifest: one SQLite row per job (and per segment of a split job),
written by the driver alone.

SQLite in WAL mode with synchronous=FULL: every state change is one committed
transaction, so a batch killed at any instant (kill -9, power loss) leaves the
manifest as of its last finished change, and readers (a progress dashboard, a
test) can query it while the batch writes. A job moves queued -> running ->
done | failed; a row left `running` belongs to a batch that died and is run
again. An exclusive lock (flock, released by the kernel when the process dies)
keeps two batches from sharing one manifest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipswap_video.batch.jobs import JobOutcome
from clipswap_video.errors import ConfigValueError, OutputUnwritableError
from clipswap_video.media.segments import Span

_SAMPLE = 1 << 20  # bytes hashed at each end of an input
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    output TEXT PRIMARY KEY,          -- relative to the manifest's folder
    input TEXT NOT NULL,
    sources TEXT NOT NULL,            -- JSON list of paths
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    input_size INTEGER NOT NULL,
    input_mtime_ns INTEGER NOT NULL,
    input_sha256 TEXT NOT NULL,       -- of size, first MiB and last MiB
    settings TEXT NOT NULL,           -- the effective settings, as TOML
    device TEXT,
    frames INTEGER,
    queued_at REAL, started_at REAL, finished_at REAL,
    elapsed_s REAL,                   -- the worker's time in the pipeline
    wall_s REAL,                      -- start to end as the driver saw it (adds model loading)
    error TEXT,
    exit_code INTEGER,
    frames_swapped INTEGER,           -- frames with a swapped face
    frames_missed INTEGER,            -- frames with a chosen face left unswapped
    quality TEXT                      -- JSON: per-second figures and flagged ranges
)
"""
_SEGMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    output TEXT NOT NULL,             -- the job's key
    number INTEGER NOT NULL,          -- from 0, in time order
    start_pts INTEGER, end_pts INTEGER, seek_pts INTEGER,  -- media.segments.Span
    frames_expected INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    device TEXT,
    frames INTEGER,
    started_at REAL, finished_at REAL,
    elapsed_s REAL,
    error TEXT,
    exit_code INTEGER,
    coverage TEXT,                    -- JSON: FaceCoverage.as_json
    quality TEXT,                     -- JSON: QualityLog.record
    PRIMARY KEY (output, number)
)
"""
_ADDED_COLUMNS = {"frames_swapped": "INTEGER", "frames_missed": "INTEGER", "quality": "TEXT"}
"""Columns newer than the first manifests: added to an older one when it is opened."""


@dataclass(frozen=True)
class InputIdentity:
    """What a rerun compares to tell whether an input changed."""

    size: int
    mtime_ns: int
    sha256: str


def input_identity(path: Path, known: InputIdentity | None = None) -> InputIdentity:
    """Size, mtime and a SHA-256 of the size plus the first and last MiB.

    Same size and mtime as `known`: taken as unchanged without reading (the
    rule make and rsync use), so a rerun over thousands of files reads nothing.
    Otherwise the sample is hashed: a copied or touched file with the same
    content keeps its finished output, while a re-export (whose container
    header and index, at one end or the other, differ) is redone. A full hash
    would read every byte of every input on each rerun.
    """
    stat = path.stat()
    if known is not None and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        return known
    digest = hashlib.sha256(str(stat.st_size).encode())
    with open(path, "rb") as file:
        digest.update(file.read(_SAMPLE))
        if stat.st_size > _SAMPLE:
            file.seek(max(_SAMPLE, stat.st_size - _SAMPLE))
            digest.update(file.read(_SAMPLE))
    return InputIdentity(stat.st_size, stat.st_mtime_ns, digest.hexdigest())


class Manifest:
    """The jobs table of one batch; keys are output paths relative to its folder."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.folder = path.parent
        self._lock = None if read_only else _take_lock(path)
        try:
            if read_only:  # --dry-run: never creates or changes the manifest
                uri = f"{path.absolute().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self._db = sqlite3.connect(path, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute(_SCHEMA)
                self._db.execute(_SEGMENTS_SCHEMA)
                self._add_missing_columns()
        except sqlite3.DatabaseError as error:
            raise ConfigValueError(f"manifest {path} cannot be used: {error}") from None

    def _add_missing_columns(self) -> None:
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def key(self, output: Path) -> str:
        return os.path.relpath(output, self.folder)

    def record(self, output: Path) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM jobs WHERE output = ?", (self.key(output),))
        found = row.fetchone()
        return dict(found) if found is not None else None

    def identity(self, output: Path) -> InputIdentity | None:
        """The input identity stored for `output`'s job, if any."""
        record = self.record(output)
        if record is None:
            return None
        return InputIdentity(record["input_size"], record["input_mtime_ns"], record["input_sha256"])

    def queue(
        self,
        output: Path,
        input_path: Path,
        sources: Sequence[Path],
        identity: InputIdentity,
        settings: str,
    ) -> None:
        """(Re)queues a job; keeps its attempt count, clears the last result."""
        self._write(
            """INSERT INTO jobs (output, input, sources, state, input_size, input_mtime_ns,
                   input_sha256, settings, queued_at)
               VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)
               ON CONFLICT (output) DO UPDATE SET
                   input = excluded.input, sources = excluded.sources, state = 'queued',
                   input_size = excluded.input_size, input_mtime_ns = excluded.input_mtime_ns,
                   input_sha256 = excluded.input_sha256, settings = excluded.settings,
                   queued_at = excluded.queued_at, device = NULL, frames = NULL,
                   started_at = NULL, finished_at = NULL, elapsed_s = NULL, wall_s = NULL,
                   error = NULL, exit_code = NULL, frames_swapped = NULL,
                   frames_missed = NULL""",
            (
                self.key(output),
                str(input_path),
                json.dumps([str(s) for s in sources]),
                identity.size,
                identity.mtime_ns,
                identity.sha256,
                settings,
                time.time(),
            ),
        )

    def refresh_identity(self, output: Path, identity: InputIdentity) -> None:
        """Stores a new mtime for an input whose content sample did not change."""
        self._write(
            "UPDATE jobs SET input_mtime_ns = ? WHERE output = ?",
            (identity.mtime_ns, self.key(output)),
        )

    def start(self, output: Path, device: str) -> None:
        self._write(
            """UPDATE jobs SET state = 'running', attempts = attempts + 1, device = ?,
                   started_at = ? WHERE output = ?""",
            (device, time.time(), self.key(output)),
        )

    def finish(self, outcome: JobOutcome) -> None:
        """Records the end of a job, or of one of its segments (`outcome.segment`):
        done when its error is None, else failed with its line; its coverage
        (FaceCoverage.as_json) and quality (a job's summary, a segment's record)
        when faces were looked for."""
        now = time.time()
        state = "done" if outcome.error is None else "failed"
        coverage, quality = outcome.coverage, outcome.quality
        ended = (state, outcome.device, outcome.frames, outcome.elapsed_s, now)
        result = (outcome.error, outcome.exit_code)
        if outcome.segment is not None:
            self._write(
                """UPDATE segments SET state = ?, device = ?, frames = ?, elapsed_s = ?,
                       finished_at = ?, error = ?, exit_code = ?, coverage = ?, quality = ?
                   WHERE output = ? AND number = ?""",
                (
                    *ended,
                    *result,
                    json.dumps(coverage) if coverage is not None else None,
                    json.dumps(quality) if quality is not None else None,
                    self.key(outcome.job.output),
                    outcome.segment.number,
                ),
            )
            return
        self._write(
            """UPDATE jobs SET state = ?, device = ?, frames = ?, elapsed_s = ?,
                   finished_at = ?, wall_s = ? - COALESCE(started_at, ?), error = ?,
                   exit_code = ?, frames_swapped = ?, frames_missed = ?, quality = ?
               WHERE output = ?""",
            (
                *ended,
                now,
                now,
                *result,
                coverage["frames_swapped"] if coverage else None,
                coverage["frames_missed"] if coverage else None,
                json.dumps(quality) if quality is not None else None,
                self.key(outcome.job.output),
            ),
        )

    def requeue_running(self) -> list[Path]:
        """After an interruption: jobs and segments that were running go back to
        the queue; returns the outputs of the jobs."""
        rows = self._db.execute("SELECT output FROM jobs WHERE state = 'running'").fetchall()
        self._write("UPDATE jobs SET state = 'queued' WHERE state = 'running'", ())
        self._write("UPDATE segments SET state = 'queued' WHERE state = 'running'", ())
        return [self.folder / row["output"] for row in rows]

    def segments(self, output: Path) -> list[dict[str, Any]]:
        """The segments of `output`'s job, in order; empty: it is not split."""
        rows = self._db.execute(
            "SELECT * FROM segments WHERE output = ? ORDER BY number", (self.key(output),)
        )
        return [dict(row) for row in rows]

    def plan_segments(self, output: Path, spans: Sequence[Span], *, keep_done: bool) -> bool:
        """Records the segments of `output`'s job, all queued, except that with
        `keep_done` and the same spans as stored, the done ones stay done (a
        resumed job redoes only the rest); returns whether any was kept."""
        stored = self.segments(output)
        same = [_span_of(row) for row in stored] == list(spans)
        kept = keep_done and same and any(row["state"] == "done" for row in stored)
        key = self.key(output)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if kept:
                self._db.execute(
                    """UPDATE segments SET state = 'queued', error = NULL, exit_code = NULL
                       WHERE output = ? AND state != 'done'""",
                    (key,),
                )
                return True
            self._db.execute("DELETE FROM segments WHERE output = ?", (key,))
            self._db.executemany(
                """INSERT INTO segments (output, number, start_pts, end_pts, seek_pts,
                       frames_expected, state) VALUES (?, ?, ?, ?, ?, ?, 'queued')""",
                [
                    (key, number, span.start_pts, span.end_pts, span.seek_pts, span.frames)
                    for number, span in enumerate(spans)
                ],
            )
        return False

    def requeue_segment(self, output: Path, number: int) -> None:
        self._write(
            "UPDATE segments SET state = 'queued' WHERE output = ? AND number = ?",
            (self.key(output), number),
        )

    def start_segment(self, output: Path, number: int, device: str) -> None:
        self._write(
            """UPDATE segments SET state = 'running', attempts = attempts + 1, device = ?,
                   started_at = ? WHERE output = ? AND number = ?""",
            (device, time.time(), self.key(output), number),
        )

    def fail_segment(self, output: Path, number: int, error: str, exit_code: int) -> None:
        """Marks a done segment failed (its file cannot be joined): a retry redoes it."""
        self._write(
            """UPDATE segments SET state = 'failed', error = ?, exit_code = ?
               WHERE output = ? AND number = ?""",
            (error, exit_code, self.key(output), number),
        )

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock

    def _write(self, sql: str, parameters: Sequence[object]) -> None:
        with self._db:  # one transaction per state change
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(sql, parameters)


def _span_of(row: dict[str, Any]) -> Span:
    return Span(row["start_pts"], row["end_pts"], row["seek_pts"], row["frames_expected"])


def _take_lock(path: Path) -> int:
    """An exclusive lock beside the manifest, held until close (or death)."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise OutputUnwritableError(f"cannot create {lock_path}: {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise OutputUnwritableError(
            f"another batch is running on {path}; wait for it or give --manifest FILE"
        ) from None
    return descriptor


__all__ = ["InputIdentity", "Manifest", "input_identity"]
