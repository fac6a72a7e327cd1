"""One worker process per device for many videos on one box.

    outcomes = run_on_devices(jobs, settings, devices=expand_devices("auto"))

Each worker owns one device (a GPU, or the CPU), loads the models once per
set of settings and runs whole videos one after another (video_worker.py);
different videos run in parallel on different devices, the frames of each
video are batched inside its worker (swap.engine). Processes, not threads: each
GPU gets its own CUDA context and Python interpreter, and a worker that dies (a
driver fault, an out-of-memory kill, a segfault) fails only the video it was
working on. A worker that dies, or whose GPU a CUDA error left unusable, gets a
new process while jobs are left, twice at most per device
(batch/_worker_pool.py). The workers share the box's cores and, several on one
GPU, its memory (batch/_worker_setup.py). This module is the driver: it turns
what the workers report into one outcome per job. The batch planner (jobs,
manifests, Ray) builds on this.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from clipswap_video.batch._worker_pool import Died, Finished, Started, WorkerPool
from clipswap_video.batch._worker_setup import DetectorFactory, plan_workers
from clipswap_video.batch.jobs import JobOutcome, WorkUnit, job_of
from clipswap_video.config import Settings
from clipswap_video.devices import parse_device_list
from clipswap_video.errors import ExitCode

_POLL_S = 0.5

_NOT_RUN = "not run: every worker died or stopped"
"""The error of the jobs left when no worker is: each died with its restarts
spent (or stopped)."""


def expand_devices(spec: str, cuda_count: int | None = None) -> list[str]:
    """Worker devices from `auto` (every GPU, else one CPU worker), a comma list
    (`cuda:0,cuda:1`), or `cpu*N` / `cuda*N` shorthands (the grammar of
    clipswap_video.devices.parse_device_list); `cuda_count` defaults to the GPUs torch sees.

    Raises:
        ConfigValueError: a malformed list, or more GPUs than the machine has.
    """
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [str(device) for device in parse_device_list(spec, cuda_count)]


def run_on_devices(
    jobs: Sequence[WorkUnit],
    settings: Settings | Sequence[Settings],
    devices: Sequence[str],
    *,
    weights_dir: Path | None = None,
    on_start: Callable[[WorkUnit, str], None] | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    detector_factory: DetectorFactory | None = None,
) -> list[JobOutcome]:
    """Runs `jobs` (whole videos or segments) on one worker process per entry of
    `devices`, with the same `settings` or one per job (a worker reloads its
    models when they change, so give jobs that share settings next to each
    other); returns one outcome per job, in the order of `jobs`. `on_start(job, device)` and
    `on_outcome(outcome)` are called in this process as jobs start and end. A
    failing job does not stop the others; a worker that dies fails the job it
    ran, and a new process takes its place while jobs are left (at most twice a
    device). `detector_factory` (picklable) builds each worker's face detector
    instead of faces.create_detector. Ctrl-C stops the workers and is raised
    again here; workers whose parent dies (kill -9) exit by themselves."""
    per_job = [settings] * len(jobs) if isinstance(settings, Settings) else list(settings)
    slots = list(devices[: max(1, len(jobs))])
    setups, environment = plan_workers(
        slots, len(os.sched_getaffinity(0)), os.environ, detector_factory
    )
    pool = WorkerPool(
        mp.get_context("spawn"),  # no fork: CUDA and threads do not survive it
        slots,
        setups,
        environment,
        weights_dir,
        list(zip(jobs, per_job, strict=True)),
    )
    outcomes: dict[int, JobOutcome] = {}
    try:
        _drive(pool, jobs, outcomes, on_start, on_outcome)
    finally:
        pool.stop(unfinished=len(outcomes) < len(jobs))
    return [
        outcomes.get(index, JobOutcome.of(job, "", error=_NOT_RUN, exit_code=ExitCode.INTERNAL))
        for index, job in enumerate(jobs)
    ]


def _drive(
    pool: WorkerPool,
    jobs: Sequence[WorkUnit],
    outcomes: dict[int, JobOutcome],
    on_start: Callable[[WorkUnit, str], None] | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> None:
    """Fills `outcomes` (job index -> outcome) from what `pool` reports, until
    every job has one or no worker is left."""
    while len(outcomes) < len(jobs) and pool.working():
        for event in pool.step(_POLL_S):
            if isinstance(event, Started):
                if on_start is not None:
                    on_start(jobs[event.index], event.device)
                continue
            outcome = (
                event.outcome if isinstance(event, Finished) else _died(jobs[event.index], event)
            )
            outcomes[event.index] = outcome
            if on_outcome is not None:
                on_outcome(outcome)


def _died(unit: WorkUnit, death: Died) -> JobOutcome:
    """The outcome of a job whose worker died (killed, crashed) while running it."""
    return JobOutcome.of(
        unit,
        death.device,
        error=f"worker on {death.device} died (exit code "
        f"{death.exit_code}) while swapping {job_of(unit).input}",
        exit_code=ExitCode.INTERNAL,
    )


__all__ = ["expand_devices", "run_on_devices"]
