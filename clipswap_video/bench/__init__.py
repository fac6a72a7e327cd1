"""`clipswap-video bench`: speed and memory figures, as ratios measured in one run.

Modules: `run` (the whole bench and the plain-transcode baseline), one module
per subject (`faces`, `swap`, `models`, `swappers`, `batch`, `train`), `timing`
(the clocks: wall time, CLI runs in fresh processes, peak memory via `rss_child`)
and `onnx_standins` (swap models in the real signatures, random weights).
"""

from clipswap_video.bench.models import NeuralOptions
from clipswap_video.bench.run import (
    TARGETS,
    BenchOptions,
    Say,
    neural_figures,
    run_bench,
    swappers_only,
)

__all__ = [
    "TARGETS",
    "BenchOptions",
    "NeuralOptions",
    "Say",
    "neural_figures",
    "run_bench",
    "swappers_only",
]
