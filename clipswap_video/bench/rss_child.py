"""`python -P .../bench/rss_child.py ARGS`: run `clipswap-video ARGS`, then print
the process's peak RSS (MiB) on the last line. Run as a file: as a module it
would import the bench package (torch and every model) before the CLI.

VmHWM belongs to the address space, so exec resets it: the figure is this
command's alone. The CLI runs as `python -m clipswap_video` runs it (runpy), so
the bench measures the program without importing the command layer.
"""

import runpy
import sys


def _high_water_mark_mb() -> float:
    with open("/proc/self/status") as status:  # Linux
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM missing from /proc/self/status")


if __name__ == "__main__":
    sys.argv = ["clipswap-video", *sys.argv[1:]]
    try:
        runpy.run_module("clipswap_video", run_name="__main__")
    except SystemExit as done:
        if done.code:
            raise
    print(_high_water_mark_mb())
