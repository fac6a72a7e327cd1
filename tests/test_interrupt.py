"""Ctrl-C, SIGTERM and failing stages: the job stops cleanly and leaves no OUT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipswap_video._threads import Consumer, Producer
from clipswap_video.config import load_settings
from clipswap_video.errors import ExitCode
from clipswap_video.media import Frame
from clipswap_video.pipeline import run_video
from media_fixtures import write_clip

PASSTHROUGH = load_settings(overrides=["swap.swapper=none"])


def test_keyboard_interrupt_in_a_stage_leaves_nothing(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=40)

    def interrupt_at_ten(frame: Frame) -> None:
        if frame.index == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_video(source_image, clip, tmp_path / "out.mp4", PASSTHROUGH, stages=[interrupt_at_ten])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    # The decode and encode threads are gone (others, e.g. torch.compile's pool, may live on).
    assert not [t for t in threading.enumerate() if t.name in ("decode", "encode")]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_exits_130_without_output(
    source_image: Path, tmp_path: Path, signum: int
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=900, width=640, height=360)
    command = [
        sys.executable,
        "-m",
        "clipswap_video",
        str(source_image),
        str(clip),
        str(tmp_path / "out.mp4"),
        "--preset",
        "veryslow",
        "--quiet",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "out.partial.mp4"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_interrupt_caught_inside_a_string_exec_still_exits_130(
    source_image: Path, tmp_path: Path
) -> None:
    # `python -m` is how farms and the tests start the CLI; bash shows 130 for a SIGINT
    # death too, so only the return code of a subprocess tells the two apart.
    tests = Path(__file__).parent
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.getcwd()])}
    command = [sys.executable, "-m", "interrupt_inside_exec", str(source_image), "a.mp4", "b.mp4"]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert done.returncode == ExitCode.INTERRUPTED, done.stderr
    assert "interrupted" in done.stderr


def test_producer_error_reaches_the_consumer_thread() -> None:
    def numbers() -> object:
        yield 1
        raise ValueError("bad packet")

    stop = threading.Event()
    received = []
    with pytest.raises(ValueError, match="bad packet"):
        for item in Producer(numbers(), maxsize=2, stop=stop, name="t"):  # type: ignore[call-overload]
            received.append(item)
    assert received == [1]


def test_consumer_error_is_raised_on_put_or_close() -> None:
    stop = threading.Event()

    def sink(item: int) -> None:
        if item == 3:
            raise OSError("disk full")

    consumer = Consumer(sink, maxsize=1, stop=stop, name="t")
    with pytest.raises(OSError, match="disk full"):
        for item in range(100):
            consumer.put(item)
        consumer.close()
    assert stop.is_set()  # the producer side is told to stop too
    consumer.join()


def test_stop_ends_a_blocked_producer() -> None:
    pulled: list[int] = []

    def counting() -> Iterator[int]:
        for number in range(1000):
            pulled.append(number)
            yield number

    stop = threading.Event()
    producer = Producer(counting(), maxsize=1, stop=stop, name="blocked-producer")
    deadline = time.monotonic() + 10
    while len(pulled) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pulled == [0, 1]  # 0 fills the queue; the thread waits to put 1
    stop.set()
    stopped_at = time.monotonic()
    while _alive("blocked-producer") and time.monotonic() < stopped_at + 2:
        time.sleep(0.01)
    assert not _alive("blocked-producer")  # it polls `stop` every 0.1 s
    assert pulled == [0, 1]  # nothing more is read from the source once stopped
    assert list(producer) == [0]  # what was queued is still handed over, then the end


def _alive(name: str) -> bool:
    return any(thread.name == name for thread in threading.enumerate())


def test_disk_full_is_one_error_and_no_output(
    source_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import av.container

    from clipswap_video.errors import OutputUnwritableError

    clip = write_clip(tmp_path / "in.mp4", frames=30)
    real_mux = av.container.OutputContainer.mux
    calls = 0

    def mux_until_full(self: av.container.OutputContainer, packets: object) -> None:
        nonlocal calls
        calls += 1
        if calls > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_mux(self, packets)  # type: ignore[arg-type]

    monkeypatch.setattr(av.container.OutputContainer, "mux", mux_until_full)
    with pytest.raises(OutputUnwritableError, match="No space left on device"):
        run_video(source_image, clip, tmp_path / "out.mp4", PASSTHROUGH)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
