"""The Ray executor: batch jobs on Ray actors, one per GPU of the cluster.

Each actor holds one device (Ray sets CUDA_VISIBLE_DEVICES, so it is always
`cuda:0` inside) and keeps the loaded models of its last settings, as
the local workers do (video_worker.py); the driver hands a video to whichever actor
is free and records every start and end in the manifest itself. Inputs,
outputs and source photos must be reachable at the same paths on every node
(shared storage). Ray is optional: `pip install 'clipswap-video[ray]'`.

Actors restart, as local workers do: Ray gives an actor whose process died a
new one (`max_restarts`, RESTARTS times), and the driver kills an actor whose
GPU a CUDA error left unusable so that Ray restarts it with a clean CUDA
context. The job that was running fails; the actor takes the next once it
answers `ready` again. An actor whose restarts are spent is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipswap_video._resources import import_extra
from clipswap_video.batch.jobs import JobOutcome, WorkUnit, job_of
from clipswap_video.batch.video_worker import RESTARTS, VideoWorker
from clipswap_video.config import Settings
from clipswap_video.errors import ExitCode

log = logging.getLogger(__name__)

_POLL_S = 0.5
_KILL_WAIT_S = 2.0  # how long an actor that lost its GPU waits for the driver's kill to land
_RESTART_LIMIT_S = 300.0  # an actor not back after this long (no node can place it) is dropped


@dataclass(frozen=True)
class ActorReply:
    """What an actor returns for a job: its outcome, and whether the actor's
    GPU is lost (a CUDA error left it unusable: every later job would fail)."""

    outcome: JobOutcome
    device_lost: bool


class RayVideoWorker(VideoWorker):
    """One Ray actor: a VideoWorker on the device Ray gave it."""

    def __init__(self, weights_dir: Path | None) -> None:
        import ray

        device = "cuda:0" if ray.get_gpu_ids() else "cpu"
        super().__init__(device, f"ray:{ray.util.get_node_ip_address()}/{device}", weights_dir)
        logging.basicConfig(level=logging.WARNING, format=f"[{self.label}] %(message)s")

    def swap(self, unit: WorkUnit, settings: Settings) -> ActorReply:
        """Runs one job (VideoWorker.run) and says whether the GPU survived it."""
        return ActorReply(self.run(unit, settings), self.device_lost)

    def ready(self) -> int | None:
        """This actor process's id once it can take jobs (the driver asks after
        the actor died or was killed); None, after a short wait, while its GPU is
        lost: the driver's kill has not landed yet (it usually lands during the
        wait, and Ray then asks the restarted process)."""
        if self.device_lost:
            time.sleep(_KILL_WAIT_S)
            return None
        return os.getpid()


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
    ray: Any,
    workers: int,
    cpu_workers: int,
    jobs: int,
    weights_dir: Path | None,
    actor_class: type[RayVideoWorker] = RayVideoWorker,
) -> list[Any]:
    """One actor per GPU of the cluster (or `workers`), no more than the cluster
    can place: an actor waiting for a GPU that never frees up would hold its
    jobs forever. Ray restarts each one that dies, RESTARTS times. Tests give
    scripted subclasses as `actor_class`."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    capacity = gpus or int(resources.get("CPU", 1))
    wanted = workers or gpus or cpu_workers
    if wanted > capacity:
        log.warning("Ray cluster fits %d workers; using %d, not %d", capacity, capacity, wanted)
    count = max(1, min(wanted, capacity, jobs))
    options: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    # max_task_retries stays 0: a job that killed its actor (out of memory) would kill the next
    remote_class = ray.remote(actor_class).options(max_restarts=RESTARTS, **options)
    return [remote_class.remote(weights_dir) for _ in range(count)]


def _dispatch(
    ray: Any,
    actors: list[Any],
    queue: deque[tuple[WorkUnit, Settings]],
    on_start: Callable[[WorkUnit, str], None],
    on_outcome: Callable[[JobOutcome], None],
) -> None:
    """Gives each free actor the next job; an actor that dies fails only its
    job and, once Ray has restarted it, takes the next."""
    _Dispatch(ray, actors, queue, on_start, on_outcome).run()


class _Dispatch:
    """The driver's view of the actors: idle, running a job, or being asked
    `ready` (after a death or a kill, until Ray has restarted it)."""

    def __init__(
        self,
        ray: Any,
        actors: list[Any],
        queue: deque[tuple[WorkUnit, Settings]],
        on_start: Callable[[WorkUnit, str], None],
        on_outcome: Callable[[JobOutcome], None],
    ) -> None:
        self.ray, self.queue, self.on_start, self.on_outcome = ray, queue, on_start, on_outcome
        self.idle = list(actors)
        self.jobs: dict[Any, tuple[Any, WorkUnit]] = {}  # Ray result -> (actor, job)
        self.probes: dict[Any, tuple[Any, float]] = {}  # `ready` result -> (actor, asked at)

    def run(self) -> None:
        while self.queue or self.jobs:
            while self.idle and self.queue:
                actor, (job, settings) = self.idle.pop(), self.queue.popleft()
                self.on_start(job, "ray")
                self.jobs[actor.swap.remote(job, settings)] = (actor, job)
            if not self.jobs and not self.probes:  # every actor died: what is left cannot run
                self._not_run()
                return
            ready, _ = self.ray.wait([*self.jobs, *self.probes], num_returns=1, timeout=_POLL_S)
            for ref in ready:
                if ref in self.jobs:
                    self._job_ended(ref)
                else:
                    self._answered(ref)
            self._drop_unplaced()

    def _job_ended(self, ref: Any) -> None:
        actor, job = self.jobs.pop(ref)
        try:
            reply = self.ray.get(ref)
        except self.ray.exceptions.RayError as error:  # the actor died, or Ray failed the call
            self._ray_failed(actor, job, error)
            return
        self.on_outcome(reply.outcome)
        if reply.device_lost:
            log.warning(
                "Ray worker %s lost its GPU to a CUDA error; restarting it", reply.outcome.device
            )
            self.ray.kill(actor, no_restart=False)  # a new process: a clean CUDA context
            self._ask_ready(actor)
        else:
            self.idle.append(actor)

    def _ray_failed(self, actor: Any, job: WorkUnit, error: Exception) -> None:
        reason = (str(error).strip().splitlines() or ["no reason given"])[0]
        self.on_outcome(
            JobOutcome.of(
                job,
                "ray",
                error=f"Ray failed while swapping {job_of(job).input}: {reason}",
                exit_code=ExitCode.INTERNAL,
            )
        )
        if isinstance(error, self.ray.exceptions.RayActorError):
            self._ask_ready(actor)  # Ray restarts it, unless its restarts are spent
        else:
            self.idle.append(actor)

    def _ask_ready(self, actor: Any, since: float | None = None) -> None:
        # retried by Ray through the actor's restarts; it fails once the actor is dead for good
        ref = actor.ready.options(max_task_retries=-1).remote()
        self.probes[ref] = (actor, time.monotonic() if since is None else since)

    def _answered(self, ref: Any) -> None:
        actor, since = self.probes.pop(ref)
        try:
            pid = self.ray.get(ref)
        except self.ray.exceptions.RayError:  # dead for good (RayActorError), or Ray failed
            log.warning("a Ray worker is gone for good (its restarts spent, or it cannot start)")
            return
        if pid is None:  # the old process: the kill has not landed yet
            self._ask_ready(actor, since)
        else:
            self.idle.append(actor)

    def _drop_unplaced(self) -> None:
        """Drops the actors that have not come back for _RESTART_LIMIT_S (their
        node is gone and no other can place them): the batch must not wait forever."""
        now = time.monotonic()
        for ref, (actor, since) in list(self.probes.items()):
            if now - since > _RESTART_LIMIT_S:
                del self.probes[ref]
                log.warning("a Ray worker did not restart in %.0f s; dropped", _RESTART_LIMIT_S)
                self.ray.kill(actor, no_restart=True)

    def _not_run(self) -> None:
        for job, _ in self.queue:
            self.on_outcome(
                JobOutcome.of(
                    job, "ray", error="not run: every Ray worker died", exit_code=ExitCode.INTERNAL
                )
            )


__all__ = ["ActorReply", "RayVideoWorker", "run_on_ray"]
