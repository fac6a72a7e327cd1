"""Run with `python -m`: the swap command is interrupted inside a string `exec`, as a
Ctrl-C is when it lands while dataclasses or scipy are being imported."""

import runpy

from clipswap_video.cli import swap


def _interrupted_in_exec(*_: object) -> int:
    exec("raise KeyboardInterrupt", {})
    return 0


swap.run = _interrupted_in_exec
runpy.run_module("clipswap_video", run_name="__main__")
