"""`clipswap-video bench`: speed and memory figures, as ratios measured in one run.

Modules: `run` (the whole bench and the plain-transcode baseline), one module
per subject (`faces`, `swap`, `models`, `batch`, `train`), and `timing` (the
clocks: wall time, CLI runs in fresh processes, peak memory via `rss_child`).
"""

from clipswap_video.bench.models import NeuralOptions
from clipswap_video.bench.run import TARGETS, BenchOptions, Say, neural_figures, run_bench

__all__ = ["TARGETS", "BenchOptions", "NeuralOptions", "Say", "neural_figures", "run_bench"]
