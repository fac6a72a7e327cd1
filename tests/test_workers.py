"""One worker process per device: device lists, jobs spread over workers, a
failing job reported without stopping the others, a dead worker's job failed;
and real processes killed with SIGKILL: a driver's workers exit by themselves,
a worker's death fails only its job."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from conftest import CliRun

from clipswap_video.batch import JobOutcome, VideoJob
from clipswap_video.batch.local_executor import _fail_dead_workers, expand_devices, run_on_devices
from clipswap_video.config import load_settings
from clipswap_video.errors import ConfigValueError, ExitCode
from media_fixtures import write_clip


def test_device_lists() -> None:
    assert expand_devices("auto", cuda_count=0) == ["cpu"]
    assert expand_devices("auto", cuda_count=2) == ["cuda:0", "cuda:1"]
    assert expand_devices("cuda*2,cpu", cuda_count=2) == ["cuda:0", "cuda:1", "cpu"]
    assert expand_devices("cpu*3", cuda_count=0) == ["cpu"] * 3
    with pytest.raises(ConfigValueError, match="torch sees 1 CUDA device"):
        expand_devices("cuda:1", cuda_count=1)
    for bad in ("tpu:0", "cpu*x"):
        with pytest.raises(ConfigValueError, match="is not auto, or a comma list"):
            expand_devices(bad, cuda_count=0)


@pytest.mark.slow
def test_jobs_run_on_two_workers_and_a_bad_one_is_reported(
    source_image: Path, tmp_path: Path
) -> None:
    clips = [write_clip(tmp_path / f"in{index}.mp4", frames=12) for index in range(3)]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    jobs = [
        VideoJob((source_image,), clip, tmp_path / f"out{n}.mp4")
        for n, clip in enumerate([clips[0], broken, clips[1], clips[2]])
    ]
    seen: list[JobOutcome] = []
    settings = load_settings(overrides=["swap.swapper=none"])
    outcomes = run_on_devices(jobs, settings, ["cpu", "cpu"], on_outcome=seen.append)
    assert [outcome.job for outcome in outcomes] == jobs and len(seen) == 4
    assert [outcome.ok for outcome in outcomes] == [True, False, True, True]
    assert outcomes[1].exit_code == ExitCode.INPUT_UNREADABLE and "broken.mp4" in str(
        outcomes[1].error
    )
    assert not (tmp_path / "out1.mp4").exists()
    for outcome in outcomes[::2]:
        assert outcome.frames == 12 and outcome.device == "cpu"
        with av.open(str(outcome.job.output)) as container:
            assert container.streams.video[0].frames == 12


class _Worker:
    def __init__(self, name: str, exitcode: int | None) -> None:
        self.name, self.exitcode = name, exitcode

    def is_alive(self) -> bool:
        return self.exitcode is None


def test_a_dead_worker_fails_only_its_job(tmp_path: Path) -> None:
    jobs = [
        VideoJob((tmp_path / "a.jpg",), tmp_path / f"in{n}.mp4", tmp_path / f"out{n}.mp4")
        for n in range(2)
    ]
    running = {"clipswap-0-cuda:1": (3, jobs[0]), "clipswap-1-cuda:1": (5, jobs[1])}
    outcomes: dict[int, JobOutcome] = {}
    workers = [_Worker("clipswap-0-cuda:1", -9), _Worker("clipswap-1-cuda:1", None)]
    _fail_dead_workers(workers, running, outcomes, None)
    assert list(running) == ["clipswap-1-cuda:1"] and list(outcomes) == [3]
    assert outcomes[3].exit_code == ExitCode.INTERNAL and outcomes[3].device == "cuda:1"
    assert (
        outcomes[3].error == f"worker on cuda:1 died (exit code -9) while swapping {jobs[0].input}"
    )


# Real processes, killed with SIGKILL --------------------------------------------

_SLOW = ["--swapper", "none", "--preset", "veryslow", "--workers", "2"]  # seconds a job


def _rows(manifest: Path) -> dict[str, dict[str, Any]]:
    """The manifest's rows by output, read while the driver may write (or be dead)."""
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            return {row["output"]: dict(row) for row in db.execute("SELECT * FROM jobs")}
    except sqlite3.OperationalError:  # not created yet, or no table yet
        return {}


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux /proc: each thread lists its own)."""
    found = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # a thread that just ended
            found += [int(child) for child in listing.read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running: its /proc entry is there and it is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _is_worker(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def _batch(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """A batch driver in its own process group; whatever is left of the group is
    killed at the end, so a failing test leaves no stray worker."""
    driver = subprocess.Popen(command, start_new_session=True, text=True, **popen)
    try:
        yield driver
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()


def _slow_folder(folder: Path, clips: int, frames: int) -> Path:
    folder.mkdir()
    for index in range(clips):
        write_clip(folder / f"clip{index}.mp4", frames=frames, width=320, height=240)
    return folder


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.slow
def test_workers_exit_by_themselves_when_their_driver_is_killed(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    """kill -9 of the driver only: each worker notices, exits mid-job (its output
    left a .partial, never a finished-looking file), and a rerun does every job."""
    inputs, outputs = _slow_folder(tmp_path / "in", clips=2, frames=300), tmp_path / "out"
    arguments = ["batch", str(source_image), str(inputs), str(outputs), *_SLOW]
    manifest = outputs / "clipswap-batch.sqlite"
    with _batch(
        [sys.executable, "-m", "clipswap_video", *arguments], stderr=subprocess.DEVNULL
    ) as driver:

        def both_running() -> bool:
            assert driver.poll() is None, "the batch ended before it could be killed"
            states = [row["state"] for row in _rows(manifest).values()]
            return states == ["running", "running"]

        _wait_for(both_running, 120, "both jobs to start")
        workers = [pid for pid in _children(driver.pid) if _is_worker(pid)]
        assert len(workers) == 2
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone
        driver.wait()
        _wait_for(lambda: not any(map(_alive, workers)), 10, "the workers to exit")
    assert not [path.name for path in outputs.glob("*.mp4") if ".partial." not in path.name]
    assert {row["state"] for row in _rows(manifest).values()} == {"running"}

    code, err = cli(*arguments, "-q")
    assert code == ExitCode.OK, err
    rows = _rows(manifest)
    assert [(row["state"], row["attempts"]) for row in rows.values()] == [("done", 2)] * 2
    assert sorted(path.name for path in outputs.glob("*.mp4")) == ["clip0.mp4", "clip1.mp4"]
    assert all(_frames(outputs / name) == 300 for name in rows)


@pytest.mark.slow
def test_a_worker_killed_mid_job_fails_only_that_job(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    """SIGKILL to one of two workers: its job is failed with the worker's death as
    its error, the other worker does the rest, the batch exits 16, and
    --retry-failed redoes the failed job."""
    inputs, outputs = _slow_folder(tmp_path / "in", clips=3, frames=150), tmp_path / "out"
    arguments = ["batch", str(source_image), str(inputs), str(outputs), *_SLOW]
    manifest = outputs / "clipswap-batch.sqlite"
    with _batch(
        [sys.executable, "-m", "clipswap_video", *arguments], stderr=subprocess.PIPE
    ) as driver:

        def two_running() -> bool:
            assert driver.poll() is None, "the batch ended before a worker could be killed"
            states = [row["state"] for row in _rows(manifest).values()]
            return states.count("running") == 2

        _wait_for(two_running, 120, "two jobs to start")
        victim = next(pid for pid in _children(driver.pid) if _is_worker(pid))
        os.kill(victim, signal.SIGKILL)
        _, err = driver.communicate(timeout=240)
    assert driver.returncode == ExitCode.JOBS_FAILED, err
    rows = _rows(manifest)
    failed = [name for name, row in rows.items() if row["state"] == "failed"]
    states = {name: (row["state"], row["error"]) for name, row in rows.items()}
    assert len(failed) == 1 and sorted(rows) == ["clip0.mp4", "clip1.mp4", "clip2.mp4"], states
    row, killed_input = rows[failed[0]], inputs / failed[0]
    assert row["exit_code"] == ExitCode.INTERNAL
    assert row["error"] == f"worker on cpu died (exit code -9) while swapping {killed_input}"
    assert f"failed {killed_input}: {row['error']}" in " ".join(err.split())
    assert not (outputs / failed[0]).exists()
    done = [name for name in rows if name not in failed]
    assert all(rows[name]["state"] == "done" and _frames(outputs / name) == 150 for name in done)

    code, err = cli(*arguments, "--retry-failed", "-q")
    assert code == ExitCode.OK, err
    assert {row["state"] for row in _rows(manifest).values()} == {"done"}
    assert _frames(outputs / failed[0]) == 150 and not list(outputs.glob("*.partial.*"))
