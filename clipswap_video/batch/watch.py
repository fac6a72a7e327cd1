"""`batch --watch`: intake without a person. The folder (or a jobs file's globs)
is planned again every few seconds; a video joins the batch once its size and
modification time have stayed the same for `batch.settle_seconds`, so an upload
or copy still running is left alone. Whenever the set of settled videos changes
(one arrived, one was replaced), the batch runs as a normal one over them (the
manifest skips what is done); a deleted output or a failed job is looked at
again when the set next changes or the watch restarts. Ctrl-C or SIGTERM stops it: between passes at
once, during one as any batch stops (finished jobs kept, the rest queued).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from clipswap_video.batch.jobs import BatchOptions, JobOutcome, Plan
from clipswap_video.batch.run import BatchReport, run_batch

_LONGEST_POLL_S = 2.0


@dataclass
class SettleClock:
    """When each file's (size, mtime) was last seen to change: a file is settled
    once that is `settle_s` ago. The first sighting counts as a change, so a file
    found already complete still waits one settle time: its writer may only
    have paused."""

    settle_s: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[Path, tuple[tuple[int, int], float]] = field(default_factory=dict)

    def settled(self, paths: Iterable[Path]) -> dict[Path, tuple[int, int]]:
        """Those of `paths` that exist and are settled now, with their (size,
        mtime); forgets the others."""
        now, ready, current = self.clock(), {}, {}
        for path in paths:
            try:
                stat = path.stat()
            except OSError:  # gone (moved away, a rename mid-upload): not ready
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            previous = self._seen.get(path)
            since = previous[1] if previous is not None and previous[0] == signature else now
            current[path] = (signature, since)
            if now - since >= self.settle_s:
                ready[path] = signature
        self._seen = current
        return ready


@dataclass
class WatchSummary:
    """What a watch did before it was stopped."""

    passes: int = 0
    reports: list[BatchReport] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """done and failed jobs as the last report of each manifest has them."""
        last: dict[Path, BatchReport] = {report.manifest: report for report in self.reports}
        counts = {"done": 0, "failed": 0}
        for report in last.values():
            for job in report.jobs:
                if job["state"] in counts:
                    counts[job["state"]] += 1
        return counts


def poll_seconds(settle_s: float) -> float:
    """How often the inputs are looked at: a few times per settle time, at most
    every 2 s (a folder of thousands of files is listed each time)."""
    return max(0.1, min(_LONGEST_POLL_S, settle_s / 4))


def watch_batch(
    plan_pass: Callable[[], Plan],
    options: BatchOptions,
    settle_s: float,
    *,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    on_pass: Callable[[BatchReport], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WatchSummary:
    """Plans and runs the settled jobs again and again until interrupted; returns
    what it did when Ctrl-C or SIGTERM arrives between passes (nothing running).

    `--retry-failed` and `--force` apply to the first pass that runs jobs: after
    it a failed job waits for its input to change, and a finished one stays.

    Raises:
        BatchInterruptedError: Ctrl-C or SIGTERM during a pass (jobs kept).
        ClipswapError: a plan or a setting that is wrong (before any job of its pass).
    """
    settling = SettleClock(settle_s, clock)
    summary = WatchSummary()
    last: dict[Path, tuple[int, int]] = {}
    later = dataclasses.replace(options, retry_failed=False, force=False)
    while True:
        try:
            plan = plan_pass()
            ready = settling.settled(planned.job.input for planned in plan.jobs)
        except KeyboardInterrupt:
            return summary
        jobs = [planned for planned in plan.jobs if planned.job.input in ready]
        if jobs and ready != last:
            first = options if summary.passes == 0 else later
            report = run_batch(Plan(jobs, plan.manifest), first, on_outcome=on_outcome)
            summary.passes += 1
            summary.reports.append(report)
            if on_pass is not None:
                on_pass(report)
        last = ready
        try:
            sleep(poll_seconds(settle_s))
        except KeyboardInterrupt:
            return summary


__all__ = ["SettleClock", "WatchSummary", "poll_seconds", "watch_batch"]
