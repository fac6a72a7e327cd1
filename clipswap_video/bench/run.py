"""`clipswap-video bench`: speed and memory, as ratios measured in one run.

Absolute times on a shared 2-core machine are noisy, so every figure that
matters is a ratio of two runs made back to back on the same file:
- passthrough_vs_transcode: the pipeline with `--swapper none` against a
  plain single-loop PyAV decode+encode (video re-encoded with the same
  encoder settings, other streams copied), best of `repeats` runs each;
- rss_60s_vs_10s: peak resident memory of the CLI on a long clip against a
  short one (each in its own process): flat memory means a ratio near 1;
- face analysis on the short clip (bench/faces.py): landmark jitter
  and error with and without Kalman smoothing, and analysis throughput;
- the classic swap on the short clip (bench/swap.py): fps, time
  over the plain transcode, and the `evaluate` metrics of its output;
- the full-size generator graph's forward throughput at batch 1, 4, 8, its
  page faults per call with and without `keep_freed_host_memory`, and the
  `clipswap` job end to end against it (bench/models.py);
- the swap models users bring (inswapper, FaceFusion's): each alone against
  its job end to end, and pixel boost's cost (bench/swappers.py);
- the flicker a face restorer adds on a nearly still face, with stand-in
  restorers (bench/enhance.py); what the occlusion and region masks cost (bench/masks.py);
- the batch command: single runs against one batch with 1 and 2 workers, and
  a long clip as one job against the same clip split into segments
  (bench/batch.py);
- the short clip passed through into every container and VFX codec, each
  against the same job into an .mp4 (bench/containers.py);
- `preview` at 90 % of the long clip against a full run of it projected from
  `classic_fps`, and on that clip repeated ten times (bench/preview.py);
- the trainer's steps per second on the tiny config (bench/train.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipswap_video.bench import timing
from clipswap_video.bench.batch import batch_figures, segment_figures
from clipswap_video.bench.containers import container_figures
from clipswap_video.bench.enhance import enhancer_flicker_figures
from clipswap_video.bench.faces import face_figures
from clipswap_video.bench.masks import mask_figures
from clipswap_video.bench.models import NeuralOptions, clipswap_figures, generator_figures
from clipswap_video.bench.preview import preview_figures
from clipswap_video.bench.swap import swap_figures
from clipswap_video.bench.swappers import swapper_figures
from clipswap_video.bench.train import training_figures
from clipswap_video.bench.transcode import plain_transcode
from clipswap_video.config import Settings, load_settings
from clipswap_video.demo import DemoMedia, write_demo_media
from clipswap_video.media import probe
from clipswap_video.pipeline import run_video

Say = Callable[[str], None]
"""Where progress lines go (the CLI prints them dim)."""

TARGETS: dict[str, tuple[str, float]] = {
    "passthrough_vs_transcode": ("<=", 1.10),
    "rss_60s_vs_10s": ("<=", 1.10),
    "jitter_reduction": (">=", 0.60),
    "error_change": ("<=", 0.10),
    "analysis_fps": (">=", 25.0),
    "classic_fps": (">=", 20.0),
    "classic_identity_transfer": (">=", 0.90),
    "classic_flicker_ratio": ("<=", 1.5),
    "classic_background_psnr_db": (">=", 40.0),
    "clipswap_e2e_vs_generator": (">=", 0.85),
    "enhancer_flicker_added_fixed": ("<=", 0.10),
}


@dataclass(frozen=True)
class BenchOptions:
    """What to measure on: demo clips of these lengths and this size, the
    generator's options, the batch command's clips and the training steps (the
    defaults are `make bench`'s; the tests shrink them all)."""

    work_dir: Path | None = None
    seconds: float = 10.0
    long_seconds: float = 60.0
    width: int = 1280
    height: int = 720
    fps: int = 30
    repeats: int = 2
    neural: NeuralOptions = NeuralOptions()
    neural_seconds: float = 2.0
    batch_clips: int = 8
    batch_seconds: float = 2.0
    batch_swapper: str = "classic"
    train_steps: int = 40
    swap_weights: Path | None = None
    """A folder with the user's swap models to time instead of stand-ins."""
    swap_min_timed_s: float = 1.0
    """Timed seconds per model-alone figure at least."""
    enhancer_seconds: float = 4.0
    """Length of the nearly-still clip of the restorer's flicker figures."""
    mask_seconds: float = 2.0
    """Length of the clip the masks' end-to-end cost is timed on."""
    segment_clip_seconds: float = 60.0
    """Length of the clip timed as one batch job and split into `segment_count`."""
    segment_count: int = 4
    preview_swapper: str = "classic"
    """The swapper of the timed previews (the projected full run is classic's)."""


def run_bench(options: BenchOptions, say: Say | None = None) -> dict[str, Any]:
    """Runs every measurement; returns one flat JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="clipswap-bench-") as scratch:
        folder = options.work_dir or Path(scratch)
        short = _clip(folder / "short", options.seconds, options, say)
        long = _clip(folder / "long", options.long_seconds, options, say)
        results: dict[str, Any] = {
            "clip": f"{options.width}x{options.height} {options.fps} fps h264+aac"
        }
        results.update(_speed(short, folder, options.repeats, say))
        results.update(_memory(short, long, folder, say))
        _tell(say, "measuring face analysis (smoothing, throughput)")
        results.update(face_figures(short, Settings()))
        _tell(say, "timing and evaluating the classic swap")
        results.update(swap_figures(short, folder, results["transcode_s"], results["frames"]))
        _tell(say, "timing the short clip passed through into every kind of output")
        results.update(container_figures(short, folder / "containers", options.repeats))
        _tell(say, "timing a preview at 90 % of the long clip, and of it repeated ten times")
        results.update(
            preview_figures(
                long,
                folder / "preview",
                classic_fps=results["classic_fps"],
                swapper=options.preview_swapper,
            )
        )
        results.update(neural_figures(folder, options, say))
        results.update(model_file_figures(short, folder, options, say))
        _tell(say, "measuring the flicker a face restorer adds (stand-in restorers)")
        results.update(enhancer_flicker_figures(folder / "enhance", options.enhancer_seconds))
        _tell(say, "timing the face parser and the occlusion and region masks")
        results.update(mask_figures(folder / "masks", options.mask_seconds, options.repeats))
        _tell(say, f"timing {options.batch_clips} single runs, then batches of 1 and 2 workers")
        results.update(
            batch_figures(
                folder / "batch",
                clips=options.batch_clips,
                seconds=options.batch_seconds,
                swapper=options.batch_swapper,
            )
        )
        _tell(say, f"timing a {options.segment_clip_seconds:g} s clip whole, then in segments")
        results.update(
            segment_figures(
                folder / "segments",
                seconds=options.segment_clip_seconds,
                segments=options.segment_count,
                fps=options.fps,
                swapper=options.batch_swapper,
            )
        )
        _tell(say, "timing the trainer on the tiny config")
        results.update(
            training_figures(
                folder / "train", [short.source_image, short.video], steps=options.train_steps
            )
        )
    return results


def neural_figures(folder: Path, options: BenchOptions, say: Say | None = None) -> dict[str, Any]:
    """The generator alone, then `--swapper clipswap` end to end (`bench --neural-only`)."""
    _tell(say, "timing the generator graph (random weights)")
    generator = generator_figures(options.neural)
    _tell(say, "timing --swapper clipswap end to end with that generator")
    return generator | clipswap_figures(
        folder,
        options.neural,
        seconds=options.neural_seconds,
        size=(options.width, options.height),
    )


def swappers_only(folder: Path, options: BenchOptions, say: Say | None = None) -> dict[str, Any]:
    """`bench --swappers-only`: the swap-model figures on their own demo clip."""
    clip = _clip(folder / "short", options.seconds, options, say)
    results = {"clip": f"{options.width}x{options.height} {options.fps} fps h264+aac"}
    return results | model_file_figures(clip, folder, options, say)


def model_file_figures(
    clip: DemoMedia, folder: Path, options: BenchOptions, say: Say | None = None
) -> dict[str, Any]:
    """The swap models users bring, alone and end to end (`bench --swappers-only`)."""
    files = options.swap_weights or "stand-ins"
    _tell(say, f"timing the ONNX swappers ({files}) alone and end to end, and pixel boost")
    return swapper_figures(
        clip, folder / "swappers", options.swap_weights, min_timed_s=options.swap_min_timed_s
    )


def _clip(folder: Path, seconds: float, options: BenchOptions, say: Say | None) -> DemoMedia:
    _tell(say, f"writing a {seconds:g} s demo clip in {folder}")
    return write_demo_media(
        folder, seconds=seconds, width=options.width, height=options.height, fps=options.fps
    )


def _speed(clip: DemoMedia, folder: Path, repeats: int, say: Say | None) -> dict[str, Any]:
    settings = load_settings(overrides=["swap.swapper=none"])
    pipeline_s, transcode_s = [], []
    for attempt in range(repeats):  # interleaved, so drift in machine load hits both
        _tell(say, f"timing passthrough and plain transcode ({attempt + 1}/{repeats})")
        pipeline_s.append(
            timing.seconds(
                lambda: run_video(
                    clip.source_image, clip.video, folder / "passthrough.mp4", settings
                )
            )
        )
        transcode_s.append(
            timing.seconds(
                lambda: plain_transcode(clip.video, folder / "transcode.mp4", settings.video)
            )
        )
    frames = probe(clip.video).video.frame_count or 0
    return {
        "frames": frames,
        "passthrough_s": round(min(pipeline_s), 3),
        "transcode_s": round(min(transcode_s), 3),
        "passthrough_fps": round(frames / min(pipeline_s), 1),
        "transcode_fps": round(frames / min(transcode_s), 1),
        "passthrough_vs_transcode": round(min(pipeline_s) / min(transcode_s), 3),
    }


def _memory(short: DemoMedia, long: DemoMedia, folder: Path, say: Say | None) -> dict[str, Any]:
    _tell(say, "measuring peak memory on the short and the long clip")
    rss_short = timing.peak_rss_mb(_cli(short, folder / "rss_short.mp4"))
    rss_long = timing.peak_rss_mb(_cli(long, folder / "rss_long.mp4"))
    return {
        "rss_10s_mb": round(rss_short, 1),
        "rss_60s_mb": round(rss_long, 1),
        "rss_60s_vs_10s": round(rss_long / rss_short, 3),
    }


def _cli(clip: DemoMedia, output: Path) -> list[str]:
    return [str(clip.source_image), str(clip.video), str(output), "--swapper", "none", "--quiet"]


def _tell(say: Say | None, message: str) -> None:
    if say is not None:
        say(message)


__all__ = ["TARGETS", "BenchOptions", "Say", "neural_figures", "run_bench"]
