"""The bench's clocks: wall time of a piece of work or of a CLI run in a fresh
process, and the peak resident memory of such a run.

A CLI run in its own process imports only what the command imports, so its
time and memory are what a user's `clipswap-video ...` costs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def seconds(work: Callable[[], object]) -> float:
    """Wall time of `work()`."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def cli_seconds(arguments: list[str]) -> float:
    """Wall time of `clipswap-video ARGUMENTS` in a fresh process (which must succeed)."""
    return seconds(lambda: _run_cli([sys.executable, "-m", "clipswap_video", *arguments]))


def peak_rss_mb(arguments: list[str]) -> float:
    """Runs `clipswap-video ARGUMENTS` in a fresh process; returns its peak RSS in MiB.

    The child reports its own high-water mark (bench/rss_child.py): rusage from
    wait4() would also count the memory of this (large) parent at fork time,
    which Linux carries into the child's ru_maxrss across exec.
    """
    # Run as a file, not `-m clipswap_video.bench.rss_child`: that would import
    # the bench package first (torch and every model), and the figure with it.
    # -P keeps the bench folder off sys.path (its module names are common words).
    child = Path(__file__).with_name("rss_child.py")
    done = _run_cli([sys.executable, "-P", str(child), *arguments])
    return float(done.stdout.strip().splitlines()[-1])


def _run_cli(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench run {' '.join(command[3:4])} failed: {done.stderr.strip()}")
    return done


__all__ = ["cli_seconds", "peak_rss_mb", "seconds"]
