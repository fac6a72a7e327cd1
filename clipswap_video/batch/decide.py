"""What a batch does with each job, decided from the manifest without changing
anything: the same answer for a run and for `--dry-run`.

A job runs when it is new, unfinished (queued or running when a batch
stopped), its input changed, its finished output disappeared, or the user
asked (`--retry-failed` for failed jobs, `--force` for all); otherwise it is
skipped and the reason is its action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clipswap_video.batch.jobs import BatchOptions, PlannedJob
from clipswap_video.batch.manifest import InputIdentity, Manifest, input_identity

RUN_ACTIONS = frozenset({"new", "resume", "input changed", "output missing", "retry", "force"})
"""Actions that run the job; the others start with "skip: "."""


@dataclass(frozen=True)
class Decision:
    """One job, what its manifest row says, and what to do with it."""

    planned: PlannedJob
    record: dict[str, Any] | None
    identity: InputIdentity
    """The input as it is now (size, content sample, mtime)."""
    action: str
    touched: bool
    """Same content with a new mtime (touched, copied): the manifest's identity is stale."""

    @property
    def runs(self) -> bool:
        return self.action in RUN_ACTIONS


def decide(
    jobs: Sequence[PlannedJob], manifest: Manifest | None, options: BatchOptions
) -> list[Decision]:
    """The decision for every job; `manifest` None: no batch has run yet. Reads only."""
    return [_decide_one(planned, manifest, options) for planned in jobs]


def _decide_one(planned: PlannedJob, manifest: Manifest | None, options: BatchOptions) -> Decision:
    output = planned.job.output
    record = manifest.record(output) if manifest is not None else None
    known = manifest.identity(output) if manifest is not None else None
    current = input_identity(planned.job.input, known)
    changed = known is not None and (current.size, current.sha256) != (known.size, known.sha256)
    touched = known is not None and not changed and current.mtime_ns != known.mtime_ns
    action = action_for(record, changed=changed, output_exists=output.is_file(), options=options)
    return Decision(planned, record, current, action, touched)


def action_for(
    record: dict[str, Any] | None, *, changed: bool, output_exists: bool, options: BatchOptions
) -> str:
    """What to do with one job, given its manifest row (None: never queued)."""
    if record is None:
        return "new"
    if options.force:
        return "force"
    if changed:  # size and content sample decide; an mtime alone does not
        return "input changed"
    if record["state"] == "done":
        return "skip: done" if output_exists else "output missing"
    if record["state"] == "failed":
        return "retry" if options.retry_failed else "skip: failed"
    return "resume"  # queued or running: a batch that stopped before it


__all__ = ["RUN_ACTIONS", "Decision", "action_for", "decide"]
