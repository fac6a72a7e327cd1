"""Many videos: plan a folder or a jobs file, keep a manifest, run the jobs on
local worker processes or Ray actors, resume whatever a stopped batch left.

    plan = plan_folder([Path("src.jpg")], Path("videos"), Path("out"))
    report = run_batch(plan, BatchOptions(overrides=("swap.swapper=classic",)))

Modules: `jobs` (the data), `plan` (folders and jobs files -> a checked plan),
`manifest` (the SQLite record of every job and segment), `decide` (what a
rerun does with each job), `run` (decide, queue, execute, report), `segments`
(long videos split into segments, and their join), `watch` (a folder kept
running), `qc_report` (the HTML quality page), `video_worker` (one device's
jobs, in a worker process or a Ray actor), `local_executor` (the driver of the
worker processes, `_worker_pool` their processes and restarts) and
`ray_executor` (Ray actors).
"""

from clipswap_video.batch.jobs import (
    BatchOptions,
    JobOutcome,
    Plan,
    PlannedJob,
    VideoJob,
)
from clipswap_video.batch.plan import parse_sources, plan_folder, plan_jobs_file
from clipswap_video.batch.run import BatchReport, default_cpu_workers, run_batch, worker_devices

__all__ = [
    "BatchOptions",
    "BatchReport",
    "JobOutcome",
    "Plan",
    "PlannedJob",
    "VideoJob",
    "default_cpu_workers",
    "parse_sources",
    "plan_folder",
    "plan_jobs_file",
    "run_batch",
    "worker_devices",
]
