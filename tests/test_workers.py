"""One worker process per device: device lists, jobs spread over workers, a
failing job reported without stopping the others, a dead worker's job failed
and its place taken by a new process (a restart budget per device); scripted
workers that die at each point of the pool's protocol; and real processes
killed with SIGKILL: a driver's workers exit by themselves, a worker's death
fails only its job."""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing as mp
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
from pool_fixtures import scripted_jobs, scripted_worker
from worker_fixtures import LOST_GPU, reporting_detector, reports

from clipswap_video.batch import JobOutcome, VideoJob
from clipswap_video.batch._worker_pool import DEVICE_LOST, Died, WorkerPool, exit_reason
from clipswap_video.batch._worker_setup import (
    ALLOCATOR,
    WorkerSetup,
    device_failed,
    plan_workers,
    video_on,
)
from clipswap_video.batch.local_executor import _died, _drive, expand_devices, run_on_devices
from clipswap_video.config import load_settings
from clipswap_video.config_sections import VideoSettings
from clipswap_video.errors import ClipswapError, ConfigValueError, ExitCode
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


def test_a_dead_worker_fails_its_job_and_says_how_it_died(tmp_path: Path) -> None:
    job = VideoJob((tmp_path / "a.jpg",), tmp_path / "in.mp4", tmp_path / "out.mp4")
    outcome = _died(job, Died(3, "cuda:1", -9))
    assert outcome.exit_code == ExitCode.INTERNAL and outcome.device == "cuda:1"
    assert outcome.error == f"worker on cuda:1 died (exit code -9) while swapping {job.input}"
    assert exit_reason(-9) == "was killed by SIGKILL"
    assert exit_reason(-11) == "was killed by SIGSEGV"
    assert exit_reason(1) == "exited with status 1"
    assert exit_reason(DEVICE_LOST) == "ended after a CUDA error made its GPU unusable"


# Scripted workers, killed at each point of the protocol -------------------------


def _scripted_run(
    jobs: list[VideoJob], devices: list[str], seconds: float = 60
) -> tuple[list[str | None], list[VideoJob]]:
    """Runs `jobs` on scripted workers (pool_fixtures) as run_on_devices does;
    returns each job's error (None: done) and the jobs in the order they
    started. Fails if the pool is not done within `seconds`."""
    pool = WorkerPool(
        mp.get_context("spawn"),
        devices,
        [WorkerSetup()] * len(devices),
        {},
        None,
        [(job, None) for job in jobs],  # type: ignore[misc]  (the script ignores settings)
        target=scripted_worker,
    )
    outcomes: dict[int, JobOutcome] = {}
    started: list[VideoJob] = []
    began = time.monotonic()
    try:
        _drive(pool, jobs, outcomes, lambda unit, device: started.append(unit))  # type: ignore[arg-type]
    finally:
        pool.stop(unfinished=len(outcomes) < len(jobs))
    assert time.monotonic() - began < seconds
    assert not pool.working()
    return [outcomes[n].error if n in outcomes else "not run" for n in range(len(jobs))], started


def _killed(job: VideoJob) -> str:
    return f"worker on cpu died (exit code -9) while swapping {job.input}"


def test_a_worker_killed_mid_job_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One worker: the job it ran fails, a new worker does the rest, and one
    warning line says why it was replaced."""
    jobs = scripted_jobs(tmp_path, "ok", "kill-mid-job", "ok", "ok")
    with caplog.at_level(logging.WARNING, "clipswap_video.batch"):
        errors, started = _scripted_run(jobs, ["cpu"])
    assert errors == [None, _killed(jobs[1]), None, None] and started == jobs
    assert caplog.messages == [
        "worker on cpu was killed by SIGKILL; a new worker takes its place (1 of 2)"
    ]


def test_a_worker_killed_before_it_starts_its_job_gives_it_back(tmp_path: Path) -> None:
    """Killed between taking a job and saying it started: the job never ran,
    so the next worker runs it; nothing fails."""
    jobs = scripted_jobs(tmp_path, "kill-before-start", "ok", "ok")
    errors, started = _scripted_run(jobs, ["cpu"])
    assert errors == [None, None, None] and started == jobs


def test_a_worker_killed_idle_fails_no_job(tmp_path: Path) -> None:
    jobs = scripted_jobs(tmp_path, "kill-after", "ok", "kill-after")
    errors, _ = _scripted_run(jobs, ["cpu"])
    assert errors == [None, None, None]


def test_workers_killed_at_their_stop_mark_do_not_hang_the_driver(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both workers die when told to stop (SIGKILL while idle, after the last
    job): every job is done, no new worker is started for nothing left, and the
    driver returns at once."""
    jobs = scripted_jobs(tmp_path, "ok", "ok", "ok")
    with caplog.at_level(logging.WARNING, "clipswap_video.batch"):
        errors, _ = _scripted_run(jobs, ["dies-at-stop", "dies-at-stop"], seconds=20)
    assert errors == [None, None, None] and caplog.messages == []


def test_a_spent_restart_budget_ends_the_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every job kills its worker: two new workers, then the slot is done and
    the job left is not run; every job has an outcome, in bounded time."""
    jobs = scripted_jobs(tmp_path, "kill-mid-job", "kill-mid-job", "kill-mid-job", "ok")
    with caplog.at_level(logging.WARNING, "clipswap_video.batch"):
        errors, started = _scripted_run(jobs, ["cpu"])
    assert errors == [*map(_killed, jobs[:3]), "not run"] and started == jobs[:3]
    assert caplog.messages == [
        "worker on cpu was killed by SIGKILL; a new worker takes its place (1 of 2)",
        "worker on cpu was killed by SIGKILL; a new worker takes its place (2 of 2)",
        "worker on cpu was killed by SIGKILL; no new worker: its 2 restarts are spent",
    ]


# What each worker is given, and a GPU lost --------------------------------------


def test_workers_split_the_cores_and_share_a_gpu_s_memory() -> None:
    """GPU workers count in the thread split (they decode, analyse, composite and
    encode on the CPU); workers on one GPU get 1/k of it less a margin and
    growable segments; what the user set is kept."""
    setups, added = plan_workers(["cuda:0", "cuda:0", "cuda:1", "cpu"], 16, {})
    assert [setup.threads for setup in setups] == [4, 4, 4, 4]
    assert [setup.memory_fraction for setup in setups] == [0.48, 0.48, None, None]
    assert added == {"OMP_NUM_THREADS": "4", "PYTORCH_CUDA_ALLOC_CONF": ALLOCATOR}
    setups, added = plan_workers(["cuda:1"] * 3, 16, {})
    assert [setup.memory_fraction for setup in setups] == [pytest.approx(1 / 3 - 0.02)] * 3
    assert [setup.threads for setup in setups] == [5] * 3
    user = {"OMP_NUM_THREADS": "6", "PYTORCH_ALLOC_CONF": "max_split_size_mb:512"}
    setups, added = plan_workers(["cuda", "cuda:0"], 16, user)  # a bare cuda is GPU 0
    assert [(s.threads, s.memory_fraction) for s in setups] == [(6, 0.48), (6, 0.48)]
    assert added == {}
    setups, added = plan_workers(["cuda:0", "cuda:1"], 16, {})  # a GPU each: no cap
    assert [(s.threads, s.memory_fraction) for s in setups] == [(8, None), (8, None)]
    assert added == {"OMP_NUM_THREADS": "8"}
    setups, added = plan_workers(["cuda:0"], 16, {})  # alone: the libraries' defaults
    assert setups[0].threads is None and setups[0].memory_fraction is None and added == {}


def test_which_errors_lose_the_gpu() -> None:
    import torch

    assert device_failed(RuntimeError(LOST_GPU))
    assert device_failed(RuntimeError("CUDA error: device-side assert triggered"))
    if hasattr(torch, "AcceleratorError"):  # torch 2.8 and later
        assert device_failed(torch.AcceleratorError("an illegal instruction was encountered"))
    try:
        try:
            raise RuntimeError(LOST_GPU)
        except RuntimeError as error:
            raise ClipswapError("the swap failed") from error
    except ClipswapError as wrapped:
        assert device_failed(wrapped)
    assert not device_failed(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to..."))
    assert not device_failed(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"))
    assert not device_failed(ValueError("CUDA error"))


def test_nvenc_encodes_on_the_worker_s_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    nvenc = VideoSettings(codec="hevc_nvenc", options={"tune": "hq"})
    assert video_on("cuda:1", nvenc, out, segment=False).options == {"tune": "hq", "gpu": "1"}
    chosen = VideoSettings(codec="h264_nvenc", options={"gpu": "0"})  # the user's choice
    assert video_on("cuda:1", chosen, out, segment=False) == chosen
    x264 = VideoSettings(codec="libx264")
    assert video_on("cuda:1", x264, out, segment=False) == x264
    assert video_on("cpu", nvenc, out, segment=False) == nvenc
    auto = VideoSettings(codec="auto", h264_codec="libx264")
    assert video_on("cpu", auto, out, segment=True).codec == "libx264"  # the output's encoder
    assert video_on("cpu", auto, out, segment=False) == auto


def _fixed_face_jobs(source: Path, folder: Path, count: int) -> list[VideoJob]:
    clips = [write_clip(folder / f"in{n}.mp4", frames=6) for n in range(count)]
    return [VideoJob((source,), clip, folder / f"out{n}.mp4") for n, clip in enumerate(clips)]


@pytest.mark.slow
def test_workers_start_with_their_share_and_the_given_detector(
    source_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two CPU workers, each seen from inside (the detector factory reports): half
    the cores for OpenMP, torch and OpenCV, no allocator setting; the factory's
    detector finds its face in every frame (the bundled one finds none there)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    folder = tmp_path / "reports"
    folder.mkdir()
    jobs = _fixed_face_jobs(source_image, tmp_path, 2)
    settings = load_settings(overrides=["swap.swapper=classic"])
    factory = functools.partial(reporting_detector, folder, wait_for=2)
    outcomes = run_on_devices(jobs, settings, ["cpu", "cpu"], detector_factory=factory)
    assert [outcome.error for outcome in outcomes] == [None, None]
    assert all(
        outcome.coverage and outcome.coverage["frames_with_faces"] == 6 for outcome in outcomes
    )
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    seen = reports(folder)
    assert len({report["pid"] for report in seen}) == 2
    for report in seen:
        assert report["omp_num_threads"] == str(share) and report["alloc_conf"] is None
        assert report["torch_threads"] == share and report["cv2_threads"] == share
        assert report["device"] == "cpu"


@pytest.mark.slow
@pytest.mark.parametrize("failures", [1, 9])
def test_a_worker_that_loses_its_gpu_is_replaced(
    source_image: Path, tmp_path: Path, failures: int
) -> None:
    """A job whose worker hits a CUDA error fails with that line, and a new
    process takes the jobs left on the device; twice at most: then the jobs
    left are not run."""
    folder = tmp_path / "reports"
    folder.mkdir()
    jobs = _fixed_face_jobs(source_image, tmp_path, 4)
    settings = load_settings(overrides=["swap.swapper=classic"])
    factory = functools.partial(reporting_detector, folder, failures=failures)
    outcomes = run_on_devices(jobs, settings, ["cpu"], detector_factory=factory)
    lost = f"CUDA error on cpu, after which its worker cannot use the GPU: {LOST_GPU}"
    errors = [outcome.error for outcome in outcomes]
    if failures == 1:
        assert errors == [lost, None, None, None]
        assert [outcome.frames for outcome in outcomes[1:]] == [6, 6, 6]
    else:
        assert errors == [lost, lost, lost, "not run: every worker died or stopped"]
    assert outcomes[0].exit_code == ExitCode.INTERNAL and outcomes[0].device == "cpu"
    pids = [report["pid"] for report in reports(folder)]
    assert len(pids) == (2 if failures == 1 else 3) == len(set(pids))  # a new process each


@pytest.mark.slow
@pytest.mark.parametrize("deaths", [1, 9])
def test_the_only_worker_killed_mid_job_is_replaced(
    source_image: Path, tmp_path: Path, deaths: int
) -> None:
    """`--devices cpu` (one worker) and SIGKILL inside a running job (as the OOM
    killer does): that job fails with the worker's death, a new process does
    the later jobs; when every job kills its worker, two new ones at most, and
    the job left ends `not run`, within bounded time."""
    folder = tmp_path / "reports"
    folder.mkdir()
    jobs = _fixed_face_jobs(source_image, tmp_path, 4)
    settings = load_settings(overrides=["swap.swapper=classic"])
    factory = functools.partial(reporting_detector, folder, deaths=deaths)
    began = time.monotonic()
    outcomes = run_on_devices(jobs, settings, ["cpu"], detector_factory=factory)
    assert time.monotonic() - began < 120
    killed = [f"worker on cpu died (exit code -9) while swapping {job.input}" for job in jobs]
    errors = [outcome.error for outcome in outcomes]
    if deaths == 1:
        assert errors == [killed[0], None, None, None]
        assert [outcome.frames for outcome in outcomes[1:]] == [6, 6, 6]
        assert [_frames(job.output) for job in jobs[1:]] == [6, 6, 6]
    else:
        assert errors == [*killed[:3], "not run: every worker died or stopped"]
    assert not jobs[0].output.exists() and outcomes[0].exit_code == ExitCode.INTERNAL
    pids = [report["pid"] for report in reports(folder)]
    assert len(pids) == (2 if deaths == 1 else 3) == len(set(pids))  # a new process each


@pytest.mark.cuda
def test_two_workers_on_one_gpu_take_it_as_current_and_half_its_memory(tmp_path: Path) -> None:
    """Seen from inside each worker (its detector factory reports, then ends the
    job before any model loads): cuda:0 is the current device, torch may use
    0.48 of it, and the allocator grows segments in place."""
    folder = tmp_path / "reports"
    folder.mkdir()
    jobs = [
        VideoJob((tmp_path / "a.jpg",), tmp_path / f"in{n}.mp4", tmp_path / f"out{n}.mp4")
        for n in range(2)
    ]
    settings = load_settings(overrides=["swap.swapper=classic"])
    factory = functools.partial(reporting_detector, folder, wait_for=2, refuse=True)
    outcomes = run_on_devices(jobs, settings, ["cuda:0", "cuda:0"], detector_factory=factory)
    assert [outcome.error for outcome in outcomes] == ["reported", "reported"]
    seen = reports(folder)
    assert len({report["pid"] for report in seen}) == 2
    user = os.environ.get("PYTORCH_CUDA_ALLOC_CONF")  # kept when set, as PYTORCH_ALLOC_CONF is
    allocator = user or (None if "PYTORCH_ALLOC_CONF" in os.environ else ALLOCATOR)
    for report in seen:
        assert report["device"] == "cuda:0" and report["current_device"] == 0
        assert report["memory_fraction"] == pytest.approx(0.48)
        assert report["alloc_conf"] == allocator


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
    its error, a new worker takes its place for the job left, the batch exits
    16, and --retry-failed redoes the failed job."""
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
    # the third job was waiting: a new worker took the dead one's place, and said so
    assert "worker on cpu was killed by SIGKILL; a new worker takes its place (1 of 2)" in " ".join(
        err.split()
    )
    assert not (outputs / failed[0]).exists()
    done = [name for name in rows if name not in failed]
    assert all(rows[name]["state"] == "done" and _frames(outputs / name) == 150 for name in done)

    code, err = cli(*arguments, "--retry-failed", "-q")
    assert code == ExitCode.OK, err
    assert {row["state"] for row in _rows(manifest).values()} == {"done"}
    assert _frames(outputs / failed[0]) == 150 and not list(outputs.glob("*.partial.*"))
