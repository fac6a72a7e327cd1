"""The local worker processes: one per device slot, each given its jobs one at
a time over a pipe of its own, and a new process for a slot whose worker died.

    pool = WorkerPool(context, devices, setups, environment, weights_dir, work)
    while pool.working():
        for event in pool.step(timeout=0.5):
            ...  # Started, Finished or Died
    pool.stop(unfinished=False)

Each worker has its own duplex pipe to the driver: it receives a job (or None,
its stop mark), answers "started", then sends the job's outcome. Workers share
nothing: one killed at any moment (the OOM killer, a segfault in a native
library, os._exit) cannot leave a lock held that the others then wait on, as a
shared multiprocessing.Queue's locks can, and the driver knows which job each
worker holds. A worker that dies mid-job fails that job; one that dies before
answering "started" gives its job back to the queue. While jobs wait, the slot
of a worker that died (any exit status but 0, a signal included) gets a new
process, RESTARTS times at most, the same budget as a worker that ends with
DEVICE_LOST after a CUDA error made its GPU unusable: a box that kills every
worker is not respawned forever.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from clipswap_video.batch._worker_setup import WorkerSetup, prepare_worker, spawn_environment
from clipswap_video.batch.jobs import JobOutcome, WorkUnit
from clipswap_video.batch.video_worker import RESTARTS, VideoWorker
from clipswap_video.config import Settings
from clipswap_video.errors import ExitCode

log = logging.getLogger(__name__)

DEVICE_LOST = 75
"""A worker's exit status after a CUDA error made its GPU unusable to it."""

STARTED = "started"
"""What a worker answers when it takes a job, before the job's outcome."""

_STOP_GRACE_S = 30.0  # a stopped worker's time to remove its unfinished output and exit
_WATCH_S = 0.5  # how often a worker checks that its driver is alive

WorkerMain = Callable[[str, WorkerSetup, Path | None, Connection], None]
"""A worker process's body: (device, setup, weights folder, its end of the pipe)."""


@dataclass(frozen=True)
class Started:
    """The worker on `device` took job `index`."""

    index: int
    device: str


@dataclass(frozen=True)
class Finished:
    """Job `index` ended with `outcome` (a failure is an outcome too)."""

    index: int
    outcome: JobOutcome


@dataclass(frozen=True)
class Died:
    """The worker on `device` died while it ran job `index`; `exit_code` is its
    process's (negative: the signal that killed it)."""

    index: int
    device: str
    exit_code: int


Event = Started | Finished | Died


@dataclass
class _Slot:
    """One device slot and its current worker process (None: ended for good)."""

    number: int
    device: str
    setup: WorkerSetup
    process: Any = None
    connection: Connection | None = None  # None once the worker's end is closed
    job: int | None = None  # the job given to the worker
    started: bool = False  # the worker answered STARTED for that job
    stopping: bool = False  # its stop mark was sent
    restarts: int = 0


class WorkerPool:
    """One worker process per entry of `devices`, started at once, fed the
    (job, settings) pairs of `work` in order; `target` is the body of each
    process (worker_main; tests give scripted ones)."""

    def __init__(
        self,
        context: Any,
        devices: Sequence[str],
        setups: Sequence[WorkerSetup],
        environment: Mapping[str, str],
        weights_dir: Path | None,
        work: Sequence[tuple[WorkUnit, Settings]],
        target: WorkerMain | None = None,
    ) -> None:
        self._context, self._environment, self._weights_dir = context, environment, weights_dir
        self._target = worker_main if target is None else target
        self._work, self._waiting = work, deque(range(len(work)))
        self._slots = [
            _Slot(number, device, setup)
            for number, (device, setup) in enumerate(zip(devices, setups, strict=True))
        ]
        for slot in self._slots:
            self._start(slot)

    def working(self) -> bool:
        """Whether any worker process is left."""
        return any(slot.process is not None for slot in self._slots)

    def step(self, timeout: float) -> list[Event]:
        """Gives each idle worker the next job (or its stop mark), waits up to
        `timeout` seconds for news, and returns what happened."""
        self._hand_out()
        live = [slot for slot in self._slots if slot.process is not None]
        readable = [slot.connection for slot in live if slot.connection is not None]
        wait([*readable, *(slot.process.sentinel for slot in live)], timeout)
        events: list[Event] = []
        for slot in live:
            dead = slot.process.exitcode is not None  # before reading: nothing sent is missed
            events += self._receive(slot)
            if dead:
                events += self._bury(slot)
        return events

    def stop(self, unfinished: bool) -> None:
        """Ends the workers: each gets its stop mark, or, when jobs are
        `unfinished`, SIGTERM (it unwinds its job, see worker_main); waits for
        every one to exit, and kills those that do not."""
        live = [slot for slot in self._slots if slot.process is not None]
        for slot in live:
            if unfinished:
                slot.process.terminate()
            elif not slot.stopping:
                self._send(slot, None)
        for slot in live:
            slot.process.join(timeout=_STOP_GRACE_S)
            if slot.process.is_alive():  # stuck: no more waiting
                slot.process.kill()
                slot.process.join()
            slot.process = None
            self._close(slot)

    def _start(self, slot: _Slot) -> None:
        ours, theirs = self._context.Pipe()
        slot.process = self._context.Process(
            target=self._target,
            args=(slot.device, slot.setup, self._weights_dir, theirs),
            name=f"clipswap-{slot.number}-{slot.device}",
            daemon=True,
        )
        with spawn_environment(self._environment):  # what a spawned process starts with
            slot.process.start()
        theirs.close()  # the worker's end lives in the worker: its death closes the pipe
        slot.connection = ours

    def _hand_out(self) -> None:
        for slot in self._slots:
            if slot.connection is None or slot.job is not None or slot.stopping:
                continue
            if not self._waiting:
                slot.stopping = True
                self._send(slot, None)
            elif self._send(slot, self._work[self._waiting[0]]):
                slot.job = self._waiting.popleft()

    def _send(self, slot: _Slot, message: object) -> bool:
        """False when the worker is gone (its death is handled once seen)."""
        if slot.connection is None:  # its end closed: it is ending
            return False
        try:
            slot.connection.send(message)
        except OSError:  # a broken pipe: the worker died
            return False
        return True

    def _receive(self, slot: _Slot) -> list[Event]:
        """What the worker sent: that it started its job, the job's outcome."""
        events: list[Event] = []
        try:
            while slot.connection is not None and slot.connection.poll():
                message = slot.connection.recv()
                assert slot.job is not None, "a worker answers only a job it was given"
                if message == STARTED:
                    slot.started = True
                    events.append(Started(slot.job, slot.device))
                else:
                    events.append(Finished(slot.job, message))
                    slot.job, slot.started = None, False
        except (EOFError, OSError):  # its end is closed: it is ending
            self._close(slot)
        return events

    def _bury(self, slot: _Slot) -> list[Event]:
        """A worker process ended: fails the job it ran, or gives back the one
        it had not started; a new process for its slot while jobs wait."""
        code = slot.process.exitcode
        slot.process.join()
        events: list[Event] = []
        if slot.job is not None and slot.started:
            events.append(Died(slot.job, slot.device, code))
        elif slot.job is not None:
            self._waiting.appendleft(slot.job)  # it never ran: the next worker takes it
        slot.process, slot.job, slot.started = None, None, False
        self._close(slot)
        if not slot.stopping and code != 0 and self._waiting:  # died, with jobs to take
            self._replace(slot, code)
        return events

    def _replace(self, slot: _Slot, code: int) -> None:
        """A new process in the slot of a worker that died, within its budget."""
        if slot.restarts >= RESTARTS:
            log.warning(
                "worker on %s %s; no new worker: its %d restarts are spent",
                slot.device,
                exit_reason(code),
                RESTARTS,
            )
            return
        slot.restarts += 1
        log.warning(
            "worker on %s %s; a new worker takes its place (%d of %d)",
            slot.device,
            exit_reason(code),
            slot.restarts,
            RESTARTS,
        )
        self._start(slot)

    def _close(self, slot: _Slot) -> None:
        if slot.connection is not None:
            slot.connection.close()
            slot.connection = None


def exit_reason(code: int) -> str:
    """How a worker process ended, from its exit status, for a log line."""
    if code == DEVICE_LOST:
        return "ended after a CUDA error made its GPU unusable"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:  # a signal number Python has no name for
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def worker_main(
    device: str, setup: WorkerSetup, weights_dir: Path | None, connection: Connection
) -> None:
    """A worker process: takes jobs from its pipe until the stop mark, one at a
    time; ends with status DEVICE_LOST after a job whose CUDA error made its GPU
    unusable."""
    logging.basicConfig(level=logging.WARNING, format=f"[{device}] %(message)s")
    _exit_with_parent()
    prepare_worker(device, setup)
    _unwind_on_stop()
    worker = VideoWorker(device, device, weights_dir, setup.detector_factory)
    try:
        while (item := connection.recv()) is not None:
            connection.send(STARTED)
            connection.send(worker.run(*item))  # in the pipe: it outlives os._exit below
            if worker.device_lost:
                sys.stderr.flush()
                # no interpreter shutdown: tearing down a broken CUDA context can hang
                os._exit(DEVICE_LOST)
    except (KeyboardInterrupt, EOFError):  # stopped, or the driver is gone
        sys.exit(ExitCode.INTERRUPTED)


def _unwind_on_stop() -> None:
    """The driver stops workers with SIGTERM (Process.terminate) and Ctrl-C
    reaches the whole process group, often both at once: the first unwinds the
    job like Ctrl-C in a single run (which removes its unfinished output), later
    ones are ignored so that nothing interrupts the clean-up, and no traceback
    is printed."""
    stopping = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def _exit_with_parent() -> None:
    """Ends this worker when the driver is gone (kill -9 leaves no one to send
    the stop mark): a thread checks on the parent and exits the process. An
    unfinished output stays a `.partial` file, never a finished-looking one."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        while parent.is_alive():
            time.sleep(_WATCH_S)
        os._exit(ExitCode.INTERRUPTED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


__all__ = [
    "DEVICE_LOST",
    "STARTED",
    "Died",
    "Event",
    "Finished",
    "Started",
    "WorkerMain",
    "WorkerPool",
    "exit_reason",
    "worker_main",
]
