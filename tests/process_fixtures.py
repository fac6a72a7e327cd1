"""Running a command in a process group of its own and killing the whole group
with SIGKILL at a chosen moment, as a power cut or `kill -9` would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence


def kill_9_when(command: Sequence[object], ready: Callable[[], bool]) -> None:
    """Starts `command`, polls `ready` while it runs, then kills its whole group
    (the batch driver and its workers at once). Fails if it ends first."""
    process = subprocess.Popen(
        [str(part) for part in command], start_new_session=True, stderr=subprocess.DEVNULL
    )
    try:
        while not ready():
            assert process.poll() is None, "the command ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


__all__ = ["kill_9_when"]
