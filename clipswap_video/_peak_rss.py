"""`python -m clipswap_video._peak_rss ARGS`: run the CLI, then print its peak RSS (MiB).

Used by `bench` to measure memory in a clean process that imports only what
the CLI imports. VmHWM belongs to the address space, so exec resets it; the
wait4() rusage of a child would also count its parent's memory at fork time.
"""

import sys

from clipswap_video.cli import main


def _high_water_mark_mb() -> float:
    with open("/proc/self/status") as status:  # Linux
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM missing from /proc/self/status")


if __name__ == "__main__":
    code = main(sys.argv[1:])
    if code != 0:
        raise SystemExit(code)
    print(_high_water_mark_mb())
