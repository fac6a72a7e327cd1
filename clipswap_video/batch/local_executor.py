"""One worker process per device for many videos on one box.

    outcomes = run_on_devices(jobs, settings, devices=expand_devices("auto"))

Each worker owns one device (a GPU, or the CPU), loads the models once per
set of settings and runs whole videos one after another; different videos run
in parallel on different devices, the frames of each video are batched inside
its worker (swap.engine). Processes, not threads: each GPU gets its own CUDA
context and Python interpreter, and a crash in one worker (a driver fault, an
out-of-memory kill) fails only the video it was working on. A CUDA error that
leaves a GPU unusable to its process (an illegal address, a device-side
assert) fails the job and ends the worker; a new one takes the jobs left on
that device. The workers share the box's cores and, several on one GPU, its
memory (batch/_worker_setup.py). The batch planner (jobs, manifests, Ray)
builds on this.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipswap_video.batch._worker_setup import (
    DetectorFactory,
    WorkerSetup,
    device_failed,
    plan_workers,
    prepare_worker,
    spawn_environment,
    video_on,
)
from clipswap_video.batch.jobs import JobOutcome, Segment, VideoJob, WorkUnit, job_of
from clipswap_video.config import Settings
from clipswap_video.devices import parse_device_list
from clipswap_video.errors import ClipswapError, ExitCode

if TYPE_CHECKING:
    from clipswap_video.swap import FaceSwapper

log = logging.getLogger(__name__)

_POLL_S = 0.5
_STOP_GRACE_S = 30.0  # a stopped worker's time to remove its unfinished output and exit
_RESTARTS = 2  # new workers per device slot after lost GPUs: a failing GPU is not retried forever
_DEVICE_LOST = 75  # a worker's exit status after a CUDA error made its GPU unusable to it


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
    failing job does not stop the others; a worker whose GPU failed is replaced
    (at most twice a device). `detector_factory` (picklable) builds each worker's
    face detector instead of faces.create_detector. Ctrl-C stops the workers and
    is raised again here; workers whose parent dies (kill -9) exit by themselves."""
    context = mp.get_context("spawn")  # no fork: CUDA and threads do not survive it
    todo: Any = context.Queue()
    results: Any = context.Queue()
    per_job = [settings] * len(jobs) if isinstance(settings, Settings) else list(settings)
    for index, (job, job_settings) in enumerate(zip(jobs, per_job, strict=True)):
        todo.put((index, job, job_settings))
    slots = list(devices[: max(1, len(jobs))])
    setups, environment = plan_workers(
        slots, len(os.sched_getaffinity(0)), os.environ, detector_factory
    )
    for _ in slots:
        todo.put(None)  # one stop mark per worker slot, after the jobs
    workers = _Workers(context, slots, setups, environment, (weights_dir, todo, results))
    outcomes: dict[int, JobOutcome] = {}
    running: dict[str, tuple[int, WorkUnit]] = {}  # worker name -> its current job
    try:
        while len(outcomes) < len(jobs):
            try:
                kind, name, index, payload = results.get(timeout=_POLL_S)
            except queue.Empty:
                _fail_dead_workers(workers.processes, running, outcomes, on_outcome)
                workers.replace_lost(jobs_left=len(outcomes) + len(running) < len(jobs))
                if not workers.alive() and results.empty():
                    break
                continue
            if kind == "start":
                running[name] = (index, payload)
                if on_start is not None:
                    on_start(payload, _device(name))
            else:
                running.pop(name, None)
                outcomes[index] = payload
                if on_outcome is not None:
                    on_outcome(payload)
    finally:
        workers.stop(unfinished=len(outcomes) < len(jobs))
    return [
        outcomes.get(
            index,
            JobOutcome.of(
                job, "", error="not run: every worker stopped", exit_code=ExitCode.INTERNAL
            ),
        )
        for index, job in enumerate(jobs)
    ]


class _Workers:
    """One worker process per device slot, started at once. A slot whose worker
    ended after losing its GPU (exit status _DEVICE_LOST) gets a new process,
    _RESTARTS times at most: the new CUDA context starts clean."""

    def __init__(
        self,
        context: Any,
        devices: Sequence[str],
        setups: Sequence[WorkerSetup],
        environment: Mapping[str, str],
        queues: tuple[Path | None, Any, Any],
    ) -> None:
        self._context, self._environment, self._queues = context, environment, queues
        self._devices, self._setups = list(devices), list(setups)
        self.restarts = [0] * len(devices)
        self.processes = [self._start(slot) for slot in range(len(devices))]

    def _start(self, slot: int) -> Any:
        device, restarts = self._devices[slot], self.restarts[slot]
        weights_dir, todo, results = self._queues
        process = self._context.Process(
            target=_worker,
            args=(device, self._setups[slot], weights_dir, todo, results),
            # unique (`running` is keyed by it), the device last (see _device)
            name=f"clipswap-{slot}{f'.{restarts}' if restarts else ''}-{device}",
            daemon=True,
        )
        with spawn_environment(self._environment):  # what a spawned process starts with
            process.start()
        return process

    def replace_lost(self, jobs_left: bool) -> None:
        """A new worker for each slot whose worker lost its GPU, while jobs are left."""
        for slot, process in enumerate(self.processes):
            if not jobs_left or process.exitcode != _DEVICE_LOST:
                continue
            if self.restarts[slot] >= _RESTARTS:
                continue  # the other slots take the jobs left, if any are alive
            process.join()
            self.restarts[slot] += 1
            log.warning(
                "a new worker on %s after a CUDA error (%d of %d)",
                self._devices[slot],
                self.restarts[slot],
                _RESTARTS,
            )
            self.processes[slot] = self._start(slot)

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def stop(self, unfinished: bool) -> None:
        """Stops the workers still running when jobs are `unfinished` (each unwinds
        its job, see _worker), and waits for every one to exit."""
        for process in self.processes:
            if process.is_alive() and unfinished:
                process.terminate()
        for process in self.processes:
            process.join(timeout=_STOP_GRACE_S)
            if process.is_alive():  # stuck: no more waiting
                process.kill()
                process.join()


def _fail_dead_workers(
    workers: Sequence[Any],
    running: dict[str, tuple[int, WorkUnit]],
    outcomes: dict[int, JobOutcome],
    on_outcome: Callable[[JobOutcome], None] | None,
) -> None:
    """A worker that died mid-job (killed, crashed) fails that job only."""
    for worker in workers:
        if worker.is_alive() or worker.name not in running:
            continue
        index, unit = running.pop(worker.name)
        device = _device(worker.name)
        outcome = JobOutcome.of(
            unit,
            device,
            error=f"worker on {device} died (exit code "
            f"{worker.exitcode}) while swapping {job_of(unit).input}",
            exit_code=ExitCode.INTERNAL,
        )
        outcomes[index] = outcome
        if on_outcome is not None:
            on_outcome(outcome)


def _device(name: str) -> str:
    """The device of the worker process named `clipswap-N-DEVICE`."""
    return name.split("-", 2)[2]


class VideoWorker:
    """Runs whole videos or segments on one device, one after another, keeping
    the models of the last settings (a worker process and a Ray actor are each
    one of these)."""

    def __init__(
        self,
        device: str,
        label: str,
        weights_dir: Path | None,
        detector_factory: DetectorFactory | None = None,
    ) -> None:
        self.device = device
        self.label = label  # how outcomes name the worker
        self.weights_dir = weights_dir
        self.detector_factory = detector_factory
        self.device_lost = False  # a CUDA error made the GPU unusable to this process
        self._settings: Settings | None = None
        self._swapper: FaceSwapper | None = None  # the models of the settings above
        self._sources: tuple[Path, ...] = ()  # the identity the swapper holds

    def run(self, unit: WorkUnit, settings: Settings) -> JobOutcome:
        """Swaps one video or segment; a user error or a bug becomes its outcome."""
        from clipswap_video.pipeline import run_video
        from clipswap_video.swap.quality import quality_summary

        job = job_of(unit)
        segment = unit if isinstance(unit, Segment) else None
        on_device = dataclasses.replace(
            settings,
            swap=dataclasses.replace(settings.swap, device=self.device),
            faces=dataclasses.replace(settings.faces, device=self.device),
        )
        video = video_on(self.device, settings.video, job.output, segment is not None)
        on_device = dataclasses.replace(on_device, video=video)
        if on_device != self._settings:
            self._settings = on_device  # other settings: other models
            self._swapper = None  # one set of models at a time: GPU memory stays bounded
        try:
            swapper = self._swapper_for(job, on_device)
            done = run_video(
                list(job.sources),
                job.input,
                job.output if segment is None else segment.file,
                on_device,
                weights_dir=self.weights_dir,
                swapper=swapper,
                measure_quality=True,
                span=None if segment is None else segment.span,
                time_range=job.time_range,
            )
            coverage = done.coverage.as_json() if done.coverage is not None else None
            quality = done.quality  # a segment's record is merged at the join
            if segment is None and quality is not None:
                quality = quality_summary([quality], settings.batch)
            return JobOutcome.of(
                unit,
                self.label,
                frames=done.frames,
                elapsed_s=done.elapsed_s,
                coverage=coverage,
                quality=quality,
            )
        except Exception as error:  # the job's outcome; the worker goes on unless its GPU is lost
            return self._failed(unit, error)

    def _failed(self, unit: WorkUnit, error: Exception) -> JobOutcome:
        if device_failed(error):  # every later call on this GPU would fail too
            self.device_lost = True
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            return JobOutcome.of(
                unit,
                self.label,
                error=f"CUDA error on {self.device}, after which its worker cannot use "
                f"the GPU: {reason}",
                exit_code=ExitCode.INTERNAL,
            )
        if isinstance(error, ClipswapError):
            return JobOutcome.of(unit, self.label, error=str(error), exit_code=error.exit_code)
        return JobOutcome.of(  # a bug: report it against this job, keep the worker
            unit, self.label, error=f"internal error: {error!r}", exit_code=ExitCode.INTERNAL
        )

    def _swapper_for(self, job: VideoJob, settings: Settings) -> FaceSwapper | None:
        """The loaded models, holding the job's source identity: a job of
        another identity with the same settings keeps the models (and a
        compiled generator) and only prepares the new source."""
        if settings.swap.swapper == "none":
            return None
        if self._swapper is None:
            from clipswap_video.swap import FaceSwapper

            factory = self.detector_factory
            self._swapper = FaceSwapper(
                settings,
                list(job.sources),
                self.weights_dir,
                detector=None if factory is None else factory(settings.faces),
            )
        elif job.sources != self._sources:
            self._swapper.use_sources(list(job.sources))
        self._sources = job.sources
        return self._swapper


def _worker(
    device: str, setup: WorkerSetup, weights_dir: Path | None, todo: Any, results: Any
) -> None:
    """A worker process: takes jobs until the stop mark, one at a time; ends with
    status _DEVICE_LOST after a job whose CUDA error made its GPU unusable."""
    logging.basicConfig(level=logging.WARNING, format=f"[{device}] %(message)s")
    _exit_with_parent()
    prepare_worker(device, setup)
    # The driver stops workers with SIGTERM (Process.terminate) and Ctrl-C reaches
    # the whole process group, often both at once: the first unwinds the job like
    # Ctrl-C in a single run (which removes its unfinished output), later ones are
    # ignored so that nothing interrupts the clean-up, and no traceback is printed.
    stopping = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    name = mp.current_process().name
    worker = VideoWorker(device, device, weights_dir, setup.detector_factory)
    try:
        while (item := todo.get()) is not None:
            index, job, settings = item
            results.put(("start", name, index, job))
            results.put(("done", name, index, worker.run(job, settings)))
            if worker.device_lost:
                results.close()
                results.join_thread()  # the outcome is sent before the process ends
                sys.stderr.flush()
                # no interpreter shutdown: tearing down a broken CUDA context can hang
                os._exit(_DEVICE_LOST)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)


def _exit_with_parent() -> None:
    """Ends this worker when the driver is gone (kill -9 leaves no one to send
    the stop mark): a thread checks on the parent and exits the process. An
    unfinished output stays a `.partial` file, never a finished-looking one."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        while parent.is_alive():
            time.sleep(_POLL_S)
        os._exit(ExitCode.INTERRUPTED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


__all__ = ["VideoWorker", "expand_devices", "run_on_devices"]
