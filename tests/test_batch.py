"""`clipswap-video batch`: a folder with a corrupt clip, reruns, --retry-failed,
kill -9 then resume, a jobs file with per-job options, and a run on Ray."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest
from conftest import CliRun
from face_fixtures import astronaut, astronaut_actor, line_path, write_actor_clip
from PIL import Image
from process_fixtures import kill_9_when

from clipswap_video.batch import JobOutcome, VideoJob
from clipswap_video.errors import ExitCode
from media_fixtures import write_clip

NAMES = ["a.mp4", "b.mp4", "bad.mp4", "sub/c.mkv", "sub/d.mp4"]


def _folder(folder: Path, *, frames: int = 20, width: int = 160, height: int = 120) -> Path:
    """Five clips in a tree; bad.mp4 has garbage in the middle of its packets."""
    for name in NAMES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_clip(folder / name, frames=frames, width=width, height=height)
    bad = folder / "bad.mp4"
    data = bytearray(bad.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(index % 251 for index in range(third))
    bad.write_bytes(bytes(data))
    return folder


def _rows(manifest: Path) -> dict[str, dict[str, Any]]:
    """The manifest's rows by output, read with plain sqlite3 (while a batch may write)."""
    with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return {row["output"]: dict(row) for row in db.execute("SELECT * FROM jobs")}


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _comment(path: Path) -> str:
    """The disclosure tag (Matroska spells the key COMMENT)."""
    with av.open(str(path)) as container:
        return {key.lower(): value for key, value in container.metadata.items()}["comment"]


def _first_batch(cli: CliRun, source: Path, tmp_path: Path) -> tuple[Path, Path]:
    inputs, outputs = _folder(tmp_path / "in"), tmp_path / "out"
    code, err = cli("batch", source, inputs, outputs, "--swapper", "none", "--workers", "2")
    assert code == ExitCode.JOBS_FAILED, err
    return inputs, outputs


def test_folder_of_five_with_one_corrupt(
    cli: CliRun, source_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, outputs = _folder(tmp_path / "in"), tmp_path / "out"
    code, err = cli("batch", source_image, inputs, outputs, "--swapper", "none", "--workers", "2")
    assert code == ExitCode.JOBS_FAILED
    rows = _rows(outputs / "clipswap-batch.sqlite")
    assert sorted(rows) == NAMES
    assert {name: row["state"] for name, row in rows.items()} == {
        name: "failed" if name == "bad.mp4" else "done" for name in NAMES
    }
    bad = rows["bad.mp4"]
    assert bad["exit_code"] == ExitCode.CORRUPT_INPUT and "\n" not in bad["error"]
    assert "bad.mp4 is damaged" in bad["error"] and "--tolerate-errors" in bad["error"]
    assert f"failed {inputs / 'bad.mp4'}: {bad['error']}" in " ".join(err.split())
    assert not (outputs / "bad.mp4").exists() and not list(outputs.rglob("*.partial.*"))
    for name in NAMES[:2] + NAMES[3:]:  # the tree is mirrored, containers kept
        assert _frames(outputs / name) == 20 and rows[name]["attempts"] == 1
    report = json.loads((outputs / "clipswap-batch.json").read_text())
    assert report["counts"] == {"done": 4, "failed": 1, "ran": 5, "skipped": 0}


def test_rerun_does_nothing(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    inputs, outputs = _first_batch(cli, source_image, tmp_path)
    before = _rows(outputs / "clipswap-batch.sqlite")
    stamps = {path: path.stat().st_mtime_ns for path in outputs.rglob("*.m*")}
    code, err = cli("batch", source_image, inputs, outputs, "--swapper", "none", "--json")
    assert code == ExitCode.JOBS_FAILED  # the failed job is still failed
    assert _rows(outputs / "clipswap-batch.sqlite") == before
    assert {path: path.stat().st_mtime_ns for path in outputs.rglob("*.m*")} == stamps
    report = json.loads((outputs / "clipswap-batch.json").read_text())
    assert report["counts"]["ran"] == 0 and report["counts"]["skipped"] == 5
    assert {job["action"] for job in report["jobs"]} == {"skip: done", "skip: failed"}


def test_retry_failed(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    inputs, outputs = _first_batch(cli, source_image, tmp_path)
    before = _rows(outputs / "clipswap-batch.sqlite")
    code, err = cli(
        "batch",
        source_image,
        inputs,
        outputs,
        "--swapper",
        "none",
        "--retry-failed",
        "--tolerate-errors",
        "-q",
    )
    assert code == ExitCode.OK, err
    after = _rows(outputs / "clipswap-batch.sqlite")
    assert after["bad.mp4"]["state"] == "done" and after["bad.mp4"]["attempts"] == 2
    assert after["bad.mp4"]["error"] is None and 0 < _frames(outputs / "bad.mp4") < 20
    for name in NAMES[:2] + NAMES[3:]:  # done jobs were not touched
        assert after[name] == before[name]


def test_rerun_redoes_changed_and_missing_and_forced(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    inputs, outputs = _first_batch(cli, source_image, tmp_path)
    write_clip(inputs / "a.mp4", frames=12, width=160, height=120)  # a new export
    (outputs / "b.mp4").unlink()  # an output someone deleted
    (inputs / "sub" / "d.mp4").touch()  # same content, new mtime: kept
    args = ("batch", source_image, inputs, outputs, "--swapper", "none", "--json")
    code, err = cli(*args)
    assert code == ExitCode.JOBS_FAILED, err
    report = json.loads((outputs / "clipswap-batch.json").read_text())
    actions = {
        Path(job["output"]).relative_to(outputs).as_posix(): job["action"] for job in report["jobs"]
    }
    assert actions == {
        "a.mp4": "input changed",
        "b.mp4": "output missing",
        "bad.mp4": "skip: failed",
        "sub/c.mkv": "skip: done",
        "sub/d.mp4": "skip: done",
    }
    assert _frames(outputs / "a.mp4") == 12 and _frames(outputs / "b.mp4") == 20
    code, err = cli(*args, "--force")
    report = json.loads((outputs / "clipswap-batch.json").read_text())
    assert {job["action"] for job in report["jobs"]} == {"force"}
    assert report["counts"]["ran"] == 5 and code == ExitCode.JOBS_FAILED


def test_one_manifest_one_batch(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    from clipswap_video.batch.manifest import Manifest

    inputs, outputs = _folder(tmp_path / "in"), tmp_path / "out"
    outputs.mkdir()
    held = Manifest(outputs / "clipswap-batch.sqlite")  # another batch, still running
    try:
        code, err = cli("batch", source_image, inputs, outputs, "--swapper", "none")
    finally:
        held.close()
    assert code == ExitCode.OUTPUT_UNWRITABLE
    assert "another batch is running on" in err and len(err.strip().splitlines()) == 1
    assert not list(outputs.rglob("*.m[pk][4v]"))  # no job ran


@pytest.mark.slow
def test_kill_9_mid_batch_then_resume(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for index in range(4):  # ~1.5 s a job with x264's veryslow preset
        write_clip(inputs / f"clip{index}.mp4", frames=150, width=320, height=240)
    options = ["--swapper", "none", "--preset", "veryslow", "--workers", "1"]
    command = [sys.executable, "-m", "clipswap_video", "batch", source_image, inputs, outputs]
    manifest = outputs / "clipswap-batch.sqlite"

    def one_done_one_running() -> bool:
        try:  # the file may exist a moment before its table does
            states = [row["state"] for row in _rows(manifest).values()]
        except sqlite3.OperationalError:
            return False
        return states.count("done") >= 1 and "running" in states

    kill_9_when([*command, *options], one_done_one_running)
    killed = _rows(manifest)
    running = [name for name, row in killed.items() if row["state"] == "running"]
    for path in outputs.glob("*.mp4"):  # whatever looks finished is complete
        assert ".partial." in path.name or _frames(path) == 150
    assert not any((outputs / name).exists() for name in running)
    done = {name: row for name, row in killed.items() if row["state"] == "done"}
    stamps = {name: (outputs / name).stat().st_mtime_ns for name in done}

    code, err = cli(*command[3:], *options)
    assert code == ExitCode.OK, err
    resumed = _rows(manifest)
    assert all(row["state"] == "done" for row in resumed.values()) and len(resumed) == 4
    assert all(resumed[name] == row for name, row in done.items())  # not redone
    assert all((outputs / name).stat().st_mtime_ns == stamps[name] for name in done)
    assert all(resumed[name]["attempts"] == 2 for name in running)
    assert not list(outputs.glob("*.partial.*"))
    assert all(_frames(outputs / name) == 150 for name in resumed)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm-driver", "ctrl-c-group", "sigterm-ray"])
def test_a_stopped_batch_keeps_finished_jobs_and_requeues_the_rest(
    cli: CliRun, source_image: Path, tmp_path: Path, stop: str
) -> None:
    """SIGTERM to the batch (a render farm) or Ctrl-C in its terminal (SIGINT to
    the driver and its workers at once): exit 130, finished jobs kept, the
    running one's unfinished output removed, and a rerun completes the rest."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for index in range(3):
        write_clip(inputs / f"clip{index}.mp4", frames=150, width=320, height=240)
    options = ["--swapper", "none", "--preset", "veryslow", "--workers", "1"]
    command = [sys.executable, "-m", "clipswap_video", "batch", source_image, inputs, outputs]
    executor = ["--ray", "local"] if stop == "sigterm-ray" else []
    batch = subprocess.Popen(
        [*map(str, command), *options, *executor],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    manifest, deadline = outputs / "clipswap-batch.sqlite", time.monotonic() + 120
    while True:
        assert batch.poll() is None and time.monotonic() < deadline, "no job finished in time"
        try:
            states = [row["state"] for row in _rows(manifest).values()]
        except sqlite3.OperationalError:
            states = []
        if "done" in states and "running" in states:
            break
        time.sleep(0.05)
    if stop != "ctrl-c-group":
        batch.send_signal(signal.SIGTERM)
    else:
        os.killpg(batch.pid, signal.SIGINT)
    _, err = batch.communicate(timeout=60)
    assert batch.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err, err
    assert "job(s) finished and kept" in err and "run the same command again" in err
    rows = _rows(manifest)
    assert "running" not in {row["state"] for row in rows.values()}  # back in the queue
    assert not list(outputs.glob("*.partial.*"))
    done = [name for name, row in rows.items() if row["state"] == "done"]
    assert done and all(_frames(outputs / name) == 150 for name in done)

    code, err = cli(*command[3:], *options)
    assert code == ExitCode.OK, err
    resumed = _rows(manifest)
    assert all(resumed[name] == rows[name] for name in done)  # kept, not redone
    assert all(row["state"] == "done" for row in resumed.values()) and len(resumed) == 3


@pytest.mark.slow
def test_jobs_file(cli: CliRun, source_image: Path, tmp_path: Path) -> None:
    shutil.copy(source_image, tmp_path / "grace.jpg")
    for name in ("one.mp4", "two.mp4"):
        (tmp_path / "faces").mkdir(exist_ok=True)
        actor = astronaut_actor(line_path((260, 180), (380, 180), 1, 1.25))
        write_actor_clip(tmp_path / "faces" / name, [actor], seconds=0.5)
    write_clip(tmp_path / "plain.mp4", frames=12)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("""
[defaults]
source = "grace.jpg"
set = ["swap.swapper=none"]

[[job]]
input = "faces/*.mp4"
output = "renders/faces/"
set = ["swap.swapper=classic"]

[[job]]
input = "plain.mp4"
output = "renders/plain.mkv"
set = ["video.crf=30"]
""")
    code, err = cli("batch", jobs, "--workers", "1", "--dry-run")
    assert code == ExitCode.OK and not (tmp_path / "renders").exists()
    code, err = cli("batch", jobs, "--workers", "1")
    assert code == ExitCode.OK, err
    rows = _rows(tmp_path / "jobs.batch.sqlite")
    faces = [rows[f"renders/faces/{name}"] for name in ("one.mp4", "two.mp4")]
    plain = rows["renders/plain.mkv"]
    assert all(row["state"] == "done" for row in rows.values()) and len(rows) == 3
    assert 'swapper = "classic"' in faces[0]["settings"] and "crf = 30" in plain["settings"]
    assert _comment(tmp_path / "renders/faces/one.mp4").startswith("synthetic: face swapped")
    assert "no face swapped" in _comment(tmp_path / "renders/plain.mkv")  # its own settings

    jobs.write_text('[[job]]\nsource = "grace.jpg"\ninput = "plain.mp4"\noutptu = "x.mp4"\n')
    code, err = cli("batch", jobs)
    assert code == ExitCode.BAD_CONFIG_VALUE
    assert "job 1: unknown key 'outptu'; valid keys: container, duration, end, input" in err


def test_a_worker_loads_the_models_once_per_source_and_settings(
    cli: CliRun, source_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a jobs file's batch sends its worker, replayed on one worker in this
    process: models load only when the settings change, a source identity only
    when the source does, and each job swaps with its own source's."""
    import clipswap_video.batch.run
    import clipswap_video.pipeline
    import clipswap_video.swap
    from clipswap_video.batch.video_worker import VideoWorker
    from clipswap_video.pipeline import JobResult

    loads: list[tuple[str, int]] = []  # (source photo, video.crf) of each FaceSwapper built
    identities: list[tuple[str, int]] = []  # the same, of each identity prepared on loaded models
    swapped_with: dict[str, tuple[str, int] | None] = {}  # output -> the swapper it got

    class RecordedSwapper:
        """FaceSwapper's stand-in: records what it would load (seconds of dlib)."""

        def __init__(
            self, settings: Any, sources: list[Path], weights_dir: Any = None, detector: Any = None
        ) -> None:
            self.loaded = ("+".join(path.name for path in sources), settings.video.crf)
            loads.append(self.loaded)

        def use_sources(self, sources: list[Path]) -> None:
            self.loaded = ("+".join(path.name for path in sources), self.loaded[1])
            identities.append(self.loaded)

    def swap_nothing(
        sources: Any, input_video: Path, output: Path, settings: Any, **options: Any
    ) -> JobResult:
        swapper = options["swapper"]
        swapped_with[output.name] = swapper.loaded if swapper is not None else None
        return JobResult(output, frames=1, elapsed_s=0.0)

    def one_local_worker(jobs: Any, settings: Any, devices: Any, **keywords: Any) -> Any:
        """run_on_devices with one in-process worker, fed jobs as a spawned one is."""
        worker, outcomes = VideoWorker("cpu", "cpu", keywords["weights_dir"]), []
        for job, job_settings in zip(jobs, settings, strict=True):
            keywords["on_start"](job, "cpu")
            outcomes.append(worker.run(job, pickle.loads(pickle.dumps(job_settings))))
            keywords["on_outcome"](outcomes[-1])
        return outcomes

    monkeypatch.setattr(clipswap_video.swap, "FaceSwapper", RecordedSwapper)
    monkeypatch.setattr(clipswap_video.pipeline, "run_video", swap_nothing)
    monkeypatch.setattr(clipswap_video.batch.run, "run_on_devices", one_local_worker)
    shutil.copy(source_image, tmp_path / "grace.jpg")
    Image.fromarray(astronaut()).save(tmp_path / "astronaut.png")
    (tmp_path / "clips").mkdir()
    for name in ("a.mp4", "b.mp4"):
        write_clip(tmp_path / "clips" / name, frames=2, width=64, height=64)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("""
[defaults]
source = "grace.jpg"
set = ["swap.swapper=classic", "video.crf=20"]

[[job]]
input = "clips/*.mp4"
output = "renders/"

[[job]]
input = "clips/a.mp4"
output = "renders/a-plain.mp4"
set = ["swap.swapper=none"]

[[job]]
input = "clips/a.mp4"
output = "renders/a-crf30.mp4"
set = ["video.crf=30"]

[[job]]
source = "astronaut.png"
input = "clips/b.mp4"
output = "renders/b-astronaut.mp4"
set = ["video.crf=30"]

[[job]]
input = "clips/b.mp4"
output = "renders/b-again.mp4"
""")
    code, err = cli("batch", jobs, "--workers", "1")
    assert code == ExitCode.OK, err
    rows = _rows(tmp_path / "jobs.batch.sqlite")
    assert [row["state"] for row in rows.values()] == ["done"] * 6
    # Jobs that share settings run together: grace's three at crf 20 on one load,
    # nothing for the job that swaps nothing, grace at crf 30 (same source, other
    # settings: other models), then the astronaut on those models (other source only).
    assert loads == [("grace.jpg", 20), ("grace.jpg", 30)]
    assert identities == [("astronaut.png", 30)]
    assert swapped_with == {
        "a.mp4": ("grace.jpg", 20),
        "b.mp4": ("grace.jpg", 20),
        "b-again.mp4": ("grace.jpg", 20),
        "a-plain.mp4": None,
        "a-crf30.mp4": ("grace.jpg", 30),
        "b-astronaut.mp4": ("astronaut.png", 30),
    }


@pytest.fixture
def local_ray() -> Any:
    import ray  # in the test extra: CI runs this test, never skips it

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("executor", [("--ray",), ("--ray", "local")])
def test_ray_on_a_local_instance(
    cli: CliRun, source_image: Path, tmp_path: Path, local_ray: Any, executor: tuple[str, ...]
) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for index in range(3):
        write_clip(inputs / f"clip{index}.mp4", frames=12)
    code, err = cli(
        "batch", source_image, inputs, outputs, "--swapper", "none", *executor, "--workers", "2"
    )
    assert code == ExitCode.OK, err
    rows = _rows(outputs / "clipswap-batch.sqlite")
    assert [row["state"] for row in rows.values()] == ["done"] * 3
    assert all(
        row["device"].startswith("ray:") and row["device"].endswith("/cpu") for row in rows.values()
    )
    assert all(_frames(outputs / f"clip{index}.mp4") == 12 for index in range(3))
    assert local_ray.is_initialized()  # a Ray it did not start is left running


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--ray", "--devices", "cpu*2"),
            "--devices is for local workers; with Ray give --workers N",
        ),
        (("--ray", "jobs.toml"), "--ray jobs.toml: not a Ray address"),
    ],
)
def test_ray_flags_are_checked(
    cli: CliRun, source_image: Path, tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    (tmp_path / "in").mkdir()
    write_clip(tmp_path / "in" / "a.mp4", frames=2)
    code, err = cli("batch", source_image, tmp_path / "in", tmp_path / "out", *flags)
    assert code == ExitCode.BAD_CONFIG_VALUE
    assert message in err
    assert not (tmp_path / "out").exists()


class _FakeRay:
    """Just what ray_executor._dispatch uses of Ray: refs resolve in submission
    order (a restart that never comes resolves never); kill() restarts the
    actor, unless told not to, and lands after the next `ready` call."""

    class exceptions:  # noqa: N801 (mirrors ray.exceptions)
        class RayError(Exception):
            pass

        class RayActorError(RayError):
            pass

    def __init__(self) -> None:
        self.order: list[Any] = []
        self.killed: list[tuple[str, bool]] = []

    def wait(
        self, refs: list[Any], num_returns: int, timeout: float | None = None
    ) -> tuple[list[Any], list[Any]]:
        ready = [ref for ref in self.order if ref in refs and not ref.hangs()][:num_returns]
        return ready, [ref for ref in refs if ref not in ready]

    def get(self, ref: Any) -> Any:
        return ref.resolve()

    def kill(self, actor: Any, no_restart: bool) -> None:
        self.killed.append((actor.name, no_restart))
        actor.kill_pending = not no_restart


class _FakeActor:
    """An actor whose jobs end as its `script` says, one entry per job, then
    `ok`: `dies` (its process dies mid-job), `loses-gpu` (a CUDA error); Ray
    gives it `restarts` new processes, which `never-restarts` holds back for ever."""

    def __init__(self, ray: _FakeRay, name: str, *script: str, restarts: int = 2) -> None:
        self.ray, self.name, self.script = ray, name, list(script)
        self.restarts, self.process, self.jobs = restarts, 0, 0
        self.lost = self.dead = self.kill_pending = self.never_restarts = False
        self.swap, self.ready = _FakeMethod(self, "swap"), _FakeMethod(self, "ready")

    def restart(self) -> None:
        self.lost = False
        self.dead = self.process == self.restarts
        self.process += 1

    def swap_now(self, job: VideoJob) -> Any:
        from clipswap_video.batch.ray_executor import ActorReply

        action = self.script.pop(0) if self.script else "ok"
        if self.dead:
            raise self.ray.exceptions.RayActorError("The actor died unexpectedly")
        if action == "dies":
            self.restart()
            raise self.ray.exceptions.RayActorError("The actor is unavailable")
        if action == "loses-gpu":
            self.lost = True
            return ActorReply(JobOutcome(job, self.name, error="CUDA error"), device_lost=True)
        return ActorReply(JobOutcome(job, f"ray:{self.name}#{self.process}", frames=1), False)

    def ready_now(self) -> int | None:
        if self.dead:
            raise self.ray.exceptions.RayActorError("The actor died unexpectedly")
        if self.kill_pending and self.lost:  # the old process answers; the kill lands now
            self.kill_pending = False
            self.restart()
            return None
        return self.process


class _FakeMethod:
    """actor.swap.remote(job, settings), actor.ready.options(...).remote()."""

    def __init__(self, actor: _FakeActor, name: str) -> None:
        self.actor, self.name = actor, name

    def options(self, **options: Any) -> _FakeMethod:
        return self

    def remote(self, *args: Any) -> _FakeRef:
        ref = _FakeRef(self.actor, self.name, args)
        self.actor.ray.order.append(ref)
        self.actor.jobs += self.name == "swap"
        return ref


class _FakeRef:
    def __init__(self, actor: _FakeActor, method: str, args: tuple[Any, ...]) -> None:
        self.actor, self.method, self.args = actor, method, args

    def hangs(self) -> bool:
        return self.method == "ready" and self.actor.never_restarts

    def resolve(self) -> Any:
        if self.method == "swap":
            return self.actor.swap_now(self.args[0])
        return self.actor.ready_now()


def _fake_jobs(tmp_path: Path, count: int) -> list[VideoJob]:
    return [
        VideoJob((tmp_path / "s.jpg",), tmp_path / f"{i}.mp4", tmp_path / f"o{i}.mp4")
        for i in range(count)
    ]


def _fake_dispatch(ray: _FakeRay, actors: list[_FakeActor], jobs: list[VideoJob]) -> list[Any]:
    """The (input name, device, error) of each outcome, in the order they came."""
    from collections import deque

    from clipswap_video.batch.ray_executor import _dispatch

    outcomes: list[JobOutcome] = []
    _dispatch(
        ray, actors, deque((job, None) for job in jobs), lambda job, device: None, outcomes.append
    )
    assert sorted(o.job.input.name for o in outcomes) == sorted(j.input.name for j in jobs)
    return [(o.job.input.name, o.device, o.error) for o in outcomes]


def test_a_dead_ray_actor_fails_only_its_job_and_is_restarted(tmp_path: Path) -> None:
    ray = _FakeRay()
    dying, healthy = _FakeActor(ray, "dying", "dies"), _FakeActor(ray, "healthy")
    seen = _fake_dispatch(ray, [healthy, dying], _fake_jobs(tmp_path, 6))
    failed = [error for _, _, error in seen if error is not None]
    assert len(failed) == 1 and failed[0].startswith("Ray failed while swapping")
    assert ("ray:dying#1" in {device for _, device, _ in seen}) and dying.jobs > 1

    ray = _FakeRay()  # restarts spent: dropped, and what is left is not run
    only = _FakeActor(ray, "dying", "dies", "dies", "dies")
    seen = _fake_dispatch(ray, [only], _fake_jobs(tmp_path, 5))
    errors = [error or "" for _, _, error in seen]
    assert [error.startswith("Ray failed while swapping") for error in errors[:3]] == [True] * 3
    assert errors[3:] == ["not run: every Ray worker died"] * 2 and only.jobs == 3


def test_a_ray_actor_that_loses_its_gpu_is_killed_and_restarted(tmp_path: Path) -> None:
    """The reply says the GPU is lost: the driver kills the actor for Ray to
    restart (the old process may answer `ready` first: asked again), and the
    jobs after it run on the new process."""
    ray = _FakeRay()
    actor = _FakeActor(ray, "gpu", "ok", "loses-gpu")
    seen = _fake_dispatch(ray, [actor], _fake_jobs(tmp_path, 4))
    assert seen == [
        ("0.mp4", "ray:gpu#0", None),
        ("1.mp4", "gpu", "CUDA error"),
        ("2.mp4", "ray:gpu#1", None),
        ("3.mp4", "ray:gpu#1", None),
    ]
    assert ray.killed == [("gpu", False)]


def test_a_ray_actor_that_never_comes_back_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clipswap_video.batch.ray_executor

    monkeypatch.setattr(clipswap_video.batch.ray_executor, "_RESTART_LIMIT_S", 0.0)
    ray = _FakeRay()
    actor = _FakeActor(ray, "lost-node", "dies")
    actor.never_restarts = True
    seen = _fake_dispatch(ray, [actor], _fake_jobs(tmp_path, 2))
    assert [error is not None for _, _, error in seen] == [True, True]
    assert seen[1][2] == "not run: every Ray worker died" and ray.killed == [("lost-node", True)]


def _scripted_actor() -> type:
    """A real Ray actor class whose jobs do no video work: the input's stem says
    what happens (`dies`: SIGKILL to its own process, as the OOM killer does;
    `loses-gpu`: a CUDA error's reply); an `ok` job's device names the process.
    Defined in a function, so Ray ships the class itself to its workers."""
    from clipswap_video.batch.ray_executor import ActorReply, RayVideoWorker

    class ScriptedActor(RayVideoWorker):
        def swap(self, unit: VideoJob, settings: object) -> ActorReply:
            if unit.input.stem.startswith("dies"):
                os.kill(os.getpid(), signal.SIGKILL)
            if unit.input.stem.startswith("loses-gpu"):
                self.device_lost = True
                return ActorReply(JobOutcome(unit, self.label, error="CUDA error"), True)
            return ActorReply(JobOutcome(unit, f"pid:{os.getpid()}", frames=1), False)

    return ScriptedActor


@pytest.mark.slow
def test_real_ray_actors_restart_after_a_death_and_a_lost_gpu(
    tmp_path: Path, local_ray: Any
) -> None:
    """On a local Ray: an actor killed mid-job fails that job and takes the
    next ones once Ray has restarted it; one whose GPU is lost is killed by the
    driver and restarted the same way; a third death is one too many (two
    restarts): the jobs left are not run."""
    from collections import deque

    import clipswap_video.batch.ray_executor as ray_executor

    stems = ["ok", "dies", "ok", "loses-gpu", "ok", "dies-again", "ok"]
    jobs = [VideoJob((tmp_path / "s.jpg",), tmp_path / f"{s}.mp4", tmp_path / s) for s in stems]
    outcomes: list[JobOutcome] = []
    began = time.monotonic()
    actors = ray_executor._start_actors(local_ray, 1, 1, len(jobs), None, _scripted_actor())
    ray_executor._dispatch(
        local_ray, actors, deque((job, None) for job in jobs), lambda *_: None, outcomes.append
    )
    assert time.monotonic() - began < 120
    assert [outcome.job for outcome in outcomes] == jobs
    errors = [outcome.error or "" for outcome in outcomes]
    assert errors[1].startswith(f"Ray failed while swapping {jobs[1].input}: ")
    assert errors[3] == "CUDA error" and errors[5].startswith("Ray failed while swapping")
    assert errors[6] == "not run: every Ray worker died"
    processes = [outcomes[index].device for index in (0, 2, 4)]
    assert all(device.startswith("pid:") for device in processes)
    assert len(set(processes)) == 3  # a new process after the death and after the lost GPU
