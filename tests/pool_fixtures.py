"""A scripted body for the worker processes of batch._worker_pool.WorkerPool:
it speaks the pool's protocol without swapping anything, and dies (SIGKILL to
itself) at the point of the protocol its job's input names. Importable in the
spawned workers: they get this process's sys.path, tests/ included.

The input's stem says what the worker does with the job:

- `ok...`: answers "started", then an outcome of one frame;
- `kill-before-start...`: dies after taking the job, before "started";
- `kill-mid-job...`: dies after "started";
- `kill-after...`: dies after sending the outcome (idle, its job done).

A job's death happens once: the worker writes the job's output first, and a
job whose output exists runs as `ok`. A worker whose device is `dies-at-stop`
dies when it receives its stop mark instead of exiting.
"""

from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path

from clipswap_video.batch._worker_pool import STARTED
from clipswap_video.batch._worker_setup import WorkerSetup
from clipswap_video.batch.jobs import JobOutcome, VideoJob


def scripted_worker(
    device: str, setup: WorkerSetup, weights_dir: Path | None, connection: Connection
) -> None:
    """A WorkerMain (see the module docstring)."""
    while (item := connection.recv()) is not None:
        job, _ = item
        action = _action(job)
        if action == "kill-before-start":
            _die()
        connection.send(STARTED)
        if action == "kill-mid-job":
            _die()
        connection.send(JobOutcome(job, device, frames=1))
        if action == "kill-after":
            _die()
    if device == "dies-at-stop":
        _die()


def scripted_jobs(folder: Path, *stems: str) -> list[VideoJob]:
    """One job per stem, each with its own output (the mark of its death)."""
    return [
        VideoJob((folder / "source.jpg",), folder / f"{stem}.mp4", folder / f"out-{n}-{stem}")
        for n, stem in enumerate(stems)
    ]


def _action(job: VideoJob) -> str:
    for action in ("kill-before-start", "kill-mid-job", "kill-after"):
        if job.input.stem.startswith(action) and not job.output.exists():
            job.output.touch()  # once: a new worker given this job runs it
            return action
    return "ok"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["scripted_jobs", "scripted_worker"]
