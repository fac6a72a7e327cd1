"""The Ray executor: batch jobs on Ray actors, one per GPU of the cluster.

Each actor holds one device (Ray sets CUDA_VISIBLE_DEVICES, so it is always
`cuda:0` inside) and keeps the loaded models of its last source identity, as
the local workers do (video_worker.py); the driver hands a video to whichever actor
is free and records every start and end in the manifest itself. Inputs,
outputs and source photos must be reachable at the same paths on every node
(shared storage). Ray is optional: `pip install 'clipswap-video[ray]'`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clipswap_video._resources import import_extra
from clipswap_video.batch.jobs import JobOutcome, WorkUnit, job_of
from clipswap_video.batch.video_worker import VideoWorker
from clipswap_video.config import Settings
from clipswap_video.errors import ExitCode

log = logging.getLogger(__name__)


class RayVideoWorker(VideoWorker):
    """One Ray actor: a VideoWorker on the device Ray gave it."""

    def __init__(self, weights_dir: Path | None) -> None:
        import ray

        device = "cuda:0" if ray.get_gpu_ids() else "cpu"
        super().__init__(device, f"ray:{ray.util.get_node_ip_address()}/{device}", weights_dir)
        logging.basicConfig(level=logging.WARNING, format=f"[{self.label}] %(message)s")


def run_on_ray(
    work: Sequence[tuple[WorkUnit, Settings]],
    *,
    workers: int | None,
    cpu_workers: int,
    address: str,
    weights_dir: Path | None,
    on_start: Callable[[WorkUnit, str], None],
    on_outcome: Callable[[JobOutcome], None],
) -> None:
    """Runs every (job or segment, settings) on Ray actors; joins `address` (`auto`: the
    running cluster, `ray://host:port`) or, with `local`, uses the Ray already
    initialised in this process or starts one, which it stops at the end. Without
    GPUs, `workers` (else `cpu_workers`) CPU actors."""
    ray = import_extra("ray", "ray", "batch --ray")
    started_here = not ray.is_initialized()
    if started_here:
        on_sigterm = signal.getsignal(signal.SIGTERM)
        if address == "local":  # an instance for this batch alone
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
        _restore_handler(signal.SIGTERM, on_sigterm)
    try:
        actors = _start_actors(ray, workers or 0, cpu_workers, len(work), weights_dir)
        _dispatch(ray, actors, deque(work), on_start, on_outcome)
    finally:
        if started_here:
            ray.shutdown()


def _restore_handler(signum: int, handler: Any) -> None:
    """ray.init installs its own handler (it logs a stack and exits 1); the
    batch's own, which keeps the finished jobs and exits 130, is put back."""
    if handler is None:  # not set from Python: nothing to put back
        return
    with contextlib.suppress(ValueError):  # not the main thread (a library caller)
        signal.signal(signum, handler)


def _start_actors(
    ray: Any, workers: int, cpu_workers: int, jobs: int, weights_dir: Path | None
) -> list[Any]:
    """One actor per GPU of the cluster (or `workers`), no more than the cluster
    can place: an actor waiting for a GPU that never frees up would hold its
    jobs forever."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    capacity = gpus or int(resources.get("CPU", 1))
    wanted = workers or gpus or cpu_workers
    if wanted > capacity:
        log.warning("Ray cluster fits %d workers; using %d, not %d", capacity, capacity, wanted)
    count = max(1, min(wanted, capacity, jobs))
    options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    actor_class = ray.remote(RayVideoWorker).options(**options)
    return [actor_class.remote(weights_dir) for _ in range(count)]


def _dispatch(
    ray: Any,
    actors: list[Any],
    queue: deque[tuple[WorkUnit, Settings]],
    on_start: Callable[[WorkUnit, str], None],
    on_outcome: Callable[[JobOutcome], None],
) -> None:
    """Gives each free actor the next job; an actor that dies fails only its job."""
    idle = list(actors)
    pending: dict[Any, tuple[Any, WorkUnit]] = {}  # Ray result -> (actor, job)
    while queue or pending:
        while idle and queue:
            actor, (job, settings) = idle.pop(), queue.popleft()
            on_start(job, "ray")
            pending[actor.run.remote(job, settings)] = (actor, job)
        if not pending:  # every actor died: what is left cannot run
            for job, _ in queue:
                on_outcome(
                    JobOutcome.of(
                        job,
                        "ray",
                        error="not run: every Ray worker died",
                        exit_code=ExitCode.INTERNAL,
                    )
                )
            return
        [ready], _ = ray.wait(list(pending), num_returns=1)
        actor, job = pending.pop(ready)
        try:
            outcome = ray.get(ready)
        except ray.exceptions.RayError as error:  # the actor died, or Ray failed the call
            reason = (str(error).strip().splitlines() or ["no reason given"])[0]
            outcome = JobOutcome.of(
                job,
                "ray",
                error=f"Ray failed while swapping {job_of(job).input}: {reason}",
                exit_code=ExitCode.INTERNAL,
            )
            if isinstance(error, ray.exceptions.RayActorError):
                actor = None  # dead: no more jobs for it
        if actor is not None:
            idle.append(actor)
        on_outcome(outcome)


__all__ = ["RayVideoWorker", "run_on_ray"]
