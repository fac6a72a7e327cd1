"""The GPU check's whole jobs: `--swapper clipswap` on a one-face demo clip
(1080p on a GPU) against each of its parts timed alone in the same run (the
generator at the job's batch and precision, the face analysis, a plain
decode + encode with the same encoder), with the GPU's utilisation sampled;
and the batch executor with one and two workers on the one device."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from clipswap_video.batch.jobs import VideoJob
from clipswap_video.batch.local_executor import run_on_devices
from clipswap_video.bench import timing
from clipswap_video.bench.gpu_env import UtilisationSampler
from clipswap_video.bench.gpu_setup import PartOptions, Results, generator_spec, known_faces
from clipswap_video.bench.models import NeuralOptions, generator_throughput, write_random_clipswap
from clipswap_video.bench.transcode import plain_transcode
from clipswap_video.config import Settings, load_settings
from clipswap_video.config_sections import FaceSettings
from clipswap_video.demo import DemoMedia, write_demo_media
from clipswap_video.faces import FaceAnalyzer, FaceDetector
from clipswap_video.media.factory import open_reader
from clipswap_video.media.reader import nvdec_opens
from clipswap_video.media.trim import TimeRange
from clipswap_video.models import create_model
from clipswap_video.pipeline import run_video
from clipswap_video.swap import FaceSwapper
from clipswap_video.swap.device import resolve_device

PRESETS = ("veryfast", "medium")
TARGET = 0.85
"""The job's speed over its slowest part's alone (issue 18): the pipeline waits only on it."""


def job_part(options: PartOptions, results: Results) -> None:
    device = resolve_device(options.device)
    folder = options.folder / "job"
    width, height = options.clip_size
    media = write_demo_media(
        folder / "clip", seconds=options.clip_seconds, width=width, height=height, fps=30
    )
    weights = write_random_clipswap(folder / "weights", generator_spec(options.small))
    settings = _settings(options, "veryfast")
    detector = known_faces(media, settings.faces, options.small)
    swapper = FaceSwapper(settings, [media.source_image], weights, detector=detector)
    frames = round(options.clip_seconds * 30)
    results["job_setup"] = (
        f"{width}x{height}, {frames} frames, one face, {settings.swap.precision}, "
        f"batch {settings.swap.batch_size}, libx264, RetinaFace-Res50 "
        f"{'narrow ' if options.small else ''}on {settings.faces.device}"
    )
    parts = {
        "generator": _generator_alone(weights, options, settings),
        "analysis": frames / timing.seconds(lambda: _analyse(media, detector, settings)),
    }
    results["job_generator_faces_per_s"] = round(parts["generator"], 1)
    results["job_analysis_fps"] = round(parts["analysis"], 1)
    # An untimed start first: kernels, cuDNN plans and allocator pools are set up
    # on a job's first frames, which the first timed job would pay alone.
    warm_up = TimeRange(0.0, options.clip_seconds / 4)
    run_video(media.source_image, media.video, folder / "warm-up.mp4", settings,
              swapper=swapper, time_range=warm_up)  # fmt: skip
    for preset in PRESETS:
        settings = _settings(options, preset)
        plain_s = timing.seconds(
            functools.partial(
                plain_transcode, media.video, folder / f"plain-{preset}.mp4", settings.video
            )
        )
        parts["decode+encode"] = frames / plain_s
        with UtilisationSampler(device) as sampler:
            fps = _job_fps(media, folder / f"job-{preset}.mp4", settings, swapper)
        slowest = min(parts["generator"], parts["decode+encode"])
        results.update(
            {
                f"plain_{preset}_fps": round(parts["decode+encode"], 1),
                f"job_{preset}_fps": round(fps, 1),
                f"job_{preset}_gpu_busy_pct": sampler.mean,
                f"job_{preset}_vs_slowest_part": round(fps / slowest, 3),
                f"job_{preset}_wall": min(parts, key=lambda name: parts[name]),
            }
        )
    if not nvdec_opens():
        results["job_veryfast_nvdec_fps"] = "NVDEC does not open here"
        return
    settings = _settings(options, "veryfast", "input.hwaccel=cuda")
    results["job_veryfast_nvdec_fps"] = round(
        _job_fps(media, folder / "job-nvdec.mp4", settings, swapper), 1
    )


def batch_part(options: PartOptions, results: Results) -> None:
    """Four copies of a short clip through `run_on_devices` with one, then two
    workers on the same device (`cuda:0*2`), each worker loading its own models."""
    device = resolve_device(options.device)
    folder = options.folder / "batch"
    width, height = options.clip_size
    media = write_demo_media(folder / "clip", seconds=options.clip_seconds / 4, width=width,
                             height=height, fps=30, audio=False)  # fmt: skip
    weights = write_random_clipswap(folder / "weights", generator_spec(options.small))
    settings = _settings(options, "veryfast")
    factory = functools.partial(_worker_detector, media, options.small)
    for workers in (1, 2):
        jobs = [
            VideoJob((media.source_image,), media.video, folder / f"out-{workers}-{n}.mp4")
            for n in range(4)
        ]
        started = time.perf_counter()
        outcomes = run_on_devices(
            jobs, settings, [str(device)] * workers, weights_dir=weights, detector_factory=factory
        )
        wall = time.perf_counter() - started
        errors = [outcome.error for outcome in outcomes if outcome.error]
        if errors:
            raise RuntimeError(f"batch with {workers} worker(s): {errors[0]}")
        results[f"batch_{workers}_workers_fps"] = round(sum(o.frames for o in outcomes) / wall, 1)
    one, two = results.figures["batch_1_workers_fps"], results.figures["batch_2_workers_fps"]
    results["batch_2_vs_1_workers"] = round(two / one, 3)


def _settings(options: PartOptions, preset: str, *more: str) -> Settings:
    device = resolve_device(options.device)
    return load_settings(
        overrides=[
            "swap.swapper=clipswap",
            f"swap.device={device}",
            f"faces.device={device}",
            f"swap.precision={options.job_precision(device)}",
            f"swap.batch_size={options.engine_batch}",
            "video.codec=libx264",
            f"video.preset={preset}",
            # dlib's 68-point model (the landmark mask, the kept mouth) cannot travel
            # to the GPU machine: the box mask keeps the same CPU compositing path.
            'composite.masks=["box"]',
            "composite.keep_mouth=false",
            # The rehearsal's narrow detector on a CPU pays oneDNN's set-up for every
            # new input shape, and the quarter-turn passes bring new shapes.
            *(["faces.refine=false"] if options.small else []),
            *more,
        ]
    )


def _generator_alone(weights: Path, options: PartOptions, settings: Settings) -> float:
    """Faces per second of the job's generator file at its batch and precision."""
    device = resolve_device(settings.swap.device)
    model = create_model(weights / "ClipSwap.safetensors", device=device)
    neural = NeuralOptions(
        device=str(device),
        precision=settings.swap.precision,
        generator=generator_spec(options.small),
        min_timed_s=0.2 if options.small else 1.0,
    )
    return generator_throughput(model, settings.swap.batch_size, neural)


def _analyse(media: DemoMedia, detector: FaceDetector, settings: Settings) -> None:
    """Decode and analyse every frame, as the job's analysis stage does."""
    analyzer = FaceAnalyzer(detector, settings.faces, settings.track)
    with open_reader(media.video, quiet=True) as reader:
        for frame in reader.frames():
            analyzer.analyse(frame.rgb())


def _job_fps(media: DemoMedia, output: Path, settings: Settings, swapper: FaceSwapper) -> float:
    """Frames per second of the whole job, from its first frame read to the
    output complete (the models are loaded once, before)."""
    started: list[float] = []
    result = run_video(
        media.source_image,
        media.video,
        output,
        settings,
        swapper=swapper,
        on_start=lambda frames: started.append(time.perf_counter()),
    )
    return result.frames / (time.perf_counter() - started[0])


def _worker_detector(media: DemoMedia, small: bool, settings: FaceSettings) -> FaceDetector:
    """A batch worker's detector (built in the worker, on its device)."""
    return known_faces(media, settings, small)


__all__ = ["PRESETS", "TARGET", "batch_part", "job_part"]
