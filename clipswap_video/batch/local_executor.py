"""One worker process per device for many videos on one box.

    outcomes = run_on_devices(jobs, settings, devices=expand_devices("auto"))

Each worker owns one device (a GPU, or the CPU), loads the models once per
source identity and runs whole videos one after another; different videos run
in parallel on different devices, the frames of each video are batched inside
its worker (swap.engine). Processes, not threads: each GPU gets its own CUDA
context and Python interpreter, and a crash in one worker (a driver fault, an
out-of-memory kill) fails only the video it was working on. The batch planner
(jobs, manifests, Ray) builds on this.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipswap_video.batch.jobs import JobOutcome, Segment, VideoJob, WorkUnit, job_of
from clipswap_video.config import Settings
from clipswap_video.devices import parse_device_list
from clipswap_video.errors import ClipswapError, ExitCode

if TYPE_CHECKING:
    from clipswap_video.config import FaceSettings
    from clipswap_video.faces import FaceDetector
    from clipswap_video.swap import FaceSwapper

DetectorFactory = Callable[["FaceSettings"], "FaceDetector"]
"""Makes a worker's face detector from its face settings (picklable: it is sent
to the worker process); benchmarks with known faces pass one."""

_POLL_S = 0.5
_STOP_GRACE_S = 30.0  # a stopped worker's time to remove its unfinished output and exit


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
    failing job does not stop the others. Ctrl-C stops the workers and is
    raised again here; workers whose parent dies (kill -9) exit by themselves.
    `detector_factory`: each worker's detector instead of the settings' one."""
    context = mp.get_context("spawn")  # no fork: CUDA and threads do not survive it
    todo: Any = context.Queue()
    results: Any = context.Queue()
    per_job = [settings] * len(jobs) if isinstance(settings, Settings) else list(settings)
    for index, (job, job_settings) in enumerate(zip(jobs, per_job, strict=True)):
        todo.put((index, job, job_settings))
    workers = [
        context.Process(
            target=_worker,
            args=(device, weights_dir, todo, results, detector_factory),
            name=f"clipswap-{number}-{device}",  # unique: `running` is keyed by it
            daemon=True,
        )
        for number, device in enumerate(devices[: max(1, len(jobs))])
    ]
    cpu_workers = sum(device == "cpu" for device in devices[: len(workers)])
    with _threads_per_worker(cpu_workers):
        for worker in workers:
            todo.put(None)  # one stop mark per worker, after the jobs
            worker.start()
    outcomes: dict[int, JobOutcome] = {}
    running: dict[str, tuple[int, WorkUnit]] = {}  # worker name -> its current job
    try:
        while len(outcomes) < len(jobs):
            try:
                kind, name, index, payload = results.get(timeout=_POLL_S)
            except queue.Empty:
                _fail_dead_workers(workers, running, outcomes, on_outcome)
                if not any(worker.is_alive() for worker in workers) and results.empty():
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
        for worker in workers:
            if worker.is_alive() and len(outcomes) < len(jobs):
                worker.terminate()  # the worker unwinds its job (see _worker)
        for worker in workers:
            worker.join(timeout=_STOP_GRACE_S)
            if worker.is_alive():  # stuck: no more waiting
                worker.kill()
                worker.join()
    return [
        outcomes.get(
            index,
            JobOutcome.of(
                job, "", error="not run: every worker stopped", exit_code=ExitCode.INTERNAL
            ),
        )
        for index, job in enumerate(jobs)
    ]


@contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    """Several CPU workers share the cores: each gets cores / workers OpenMP
    threads (torch, BLAS) through the environment its spawned process inherits,
    as Ray does for its actors; unless the user set OMP_NUM_THREADS. Left to
    size their pools for every core, the workers' pools spin-wait on each other's
    cores and the batch runs slower than on one worker (docs/benchmarks.md)."""
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


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
    the models of the last source identity and settings (a worker process and a
    Ray actor are each one of these)."""

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
        self._settings: Settings | None = None
        self._swappers: dict[tuple[Path, ...], FaceSwapper] = {}

    def run(self, unit: WorkUnit, settings: Settings) -> JobOutcome:
        """Swaps one video or segment; a user error or a bug becomes its outcome."""
        from clipswap_video.media.containers import resolve_encoder
        from clipswap_video.pipeline import run_video
        from clipswap_video.swap.quality import quality_summary

        job = job_of(unit)
        segment = unit if isinstance(unit, Segment) else None
        on_device = dataclasses.replace(
            settings,
            swap=dataclasses.replace(settings.swap, device=self.device),
            faces=dataclasses.replace(settings.faces, device=self.device),
        )
        if segment is not None:  # encoded as the whole output's container wants
            codec = resolve_encoder(job.output, settings.video)
            video = dataclasses.replace(settings.video, codec=codec)
            on_device = dataclasses.replace(on_device, video=video)
        if on_device != self._settings:
            self._settings = on_device  # other settings: other models
            self._swappers.clear()
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
        except ClipswapError as error:
            return JobOutcome.of(unit, self.label, error=str(error), exit_code=error.exit_code)
        except Exception as error:  # a bug: report it against this job, keep the worker
            return JobOutcome.of(
                unit, self.label, error=f"internal error: {error!r}", exit_code=ExitCode.INTERNAL
            )

    def _swapper_for(self, job: VideoJob, settings: Settings) -> FaceSwapper | None:
        if settings.swap.swapper == "none":
            return None
        if job.sources not in self._swappers:
            from clipswap_video.swap import FaceSwapper

            self._swappers.clear()  # one identity's models at a time: GPU memory stays bounded
            detector = None
            if self.detector_factory is not None:
                detector = self.detector_factory(settings.faces)
            self._swappers[job.sources] = FaceSwapper(
                settings, list(job.sources), self.weights_dir, detector=detector
            )
        return self._swappers[job.sources]


def _worker(
    device: str,
    weights_dir: Path | None,
    todo: Any,
    results: Any,
    detector_factory: DetectorFactory | None = None,
) -> None:
    """A worker process: takes jobs until the stop mark, one at a time."""
    import logging

    logging.basicConfig(level=logging.WARNING, format=f"[{device}] %(message)s")
    _exit_with_parent()
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
    worker = VideoWorker(device, device, weights_dir, detector_factory)
    try:
        while (item := todo.get()) is not None:
            index, job, settings = item
            results.put(("start", name, index, job))
            results.put(("done", name, index, worker.run(job, settings)))
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
