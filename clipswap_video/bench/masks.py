"""What the masks cost, for `clipswap-video bench`: the BiSeNet face parser
(the architecture of 79999_iter.pth, random weights) per face on this machine,
and the classic swap end to end with the default mask, then with the occlusion
and region masks on stand-in models far cheaper than the real networks (so the
difference is mostly the masks' work around their models: resizing to 256 and
512 px and back, the 19-class arg-max, the distance-based feather, the per-track
smoothing); and the flicker of a nearly still face behind a fixed occluder (a
bar, as a microphone stand), with the occlusion mask smoothed over time or not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from clipswap_video.bench.mask_standins import GREEN, write_parser, write_xseg
from clipswap_video.config import load_settings
from clipswap_video.demo import astronaut_actor, face_box, still_path, write_demo_media
from clipswap_video.pipeline import run_video
from clipswap_video.reports.evaluate import evaluate
from clipswap_video.swap.bisenet import BiSeNet
from clipswap_video.swap.stage import FaceSwapper

_BAR = GREEN
_PARSER_BATCH = 4  # faces per call, as a frame with a few people gives
_PARSER_SIZE = 512


def mask_figures(folder: Path, seconds: float = 2.0, repeats: int = 3) -> dict[str, Any]:
    """ms per face of the BiSeNet parser, and the swap's frames per second with
    and without the occlusion and region masks."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {"mask_parser_ms_per_face": _parser_ms_per_face(repeats)}
    clip = write_demo_media(folder / "clip", seconds=seconds, width=640, height=360)
    xseg, parser = write_xseg(folder / "xseg.onnx"), write_parser(folder / "parser.onnx")
    runs = {
        "default": ["swap.swapper=classic"],
        "occlusion_region": [
            "swap.swapper=classic",
            "composite.masks=landmarks,occlusion,region",
            f"composite.occluder={xseg}",
            f"composite.parser={parser}",
        ],
    }
    fps = {}
    for name, overrides in runs.items():
        settings = load_settings(overrides=overrides)
        swapper = FaceSwapper(settings, [clip.source_image])
        best = float("inf")
        for attempt in range(repeats):
            output = folder / f"masks_{name}_{attempt}.mp4"
            started = time.perf_counter()
            result = run_video(clip.source_image, clip.video, output, settings, swapper=swapper)
            best = min(best, time.perf_counter() - started)
        fps[name] = result.frames / best
        results[f"masks_{name}_fps"] = round(fps[name], 2)
    results["masks_occlusion_region_cost"] = round(fps["default"] / fps["occlusion_region"] - 1, 3)
    results.update(_occluder_flicker(folder / "still", seconds, xseg))
    return results


def _occluder_flicker(folder: Path, seconds: float, occluder: Path) -> dict[str, float]:
    """`evaluate`'s flicker ratio of the classic swap on a nearly still face behind
    a fixed bar, with the occlusion mask, per track smoothing on (0.5) and off."""
    clip = write_demo_media(folder, seconds=seconds, width=640, height=360, still=True)
    path = still_path(640, 360, seconds)
    pose = path(0.0)
    assert pose is not None  # the still path never leaves the frame
    x0, y0, x1, y1 = face_box(astronaut_actor(path), pose)
    width, height = x1 - x0, y1 - y0
    bar = (
        slice(round(y0 + 0.2 * height), round(y1 + 0.1 * height)),
        slice(round(x0 + 0.6 * width), round(x0 + 0.72 * width)),
    )
    barred = _painted(clip.video, folder / "barred.mp4", bar)
    figures = {}
    for name, weight in (("smoothed", 0.5), ("raw", 0.0)):
        settings = load_settings(
            overrides=[
                "swap.swapper=classic",
                "composite.masks=landmarks,occlusion",
                f"composite.occluder={occluder}",
                f"composite.temporal_smoothing={weight}",
            ]
        )
        output = folder / f"occluded_{name}.mp4"
        run_video(clip.source_image, barred, output, settings)
        metrics = evaluate(clip.source_image, barred, output, settings, arcface=False)
        figures[f"masks_occluder_flicker_{name}"] = metrics["flicker_ratio"]
    return figures


def _painted(video: Path, output: Path, bar: tuple[slice, slice]) -> Path:
    """`video` with a pure green bar at a fixed place in every frame (video only)."""
    with av.open(str(video)) as source, av.open(str(output), "w") as target:
        decoded = source.streams.video[0]
        stream = target.add_stream("libx264", rate=decoded.average_rate)
        stream.width, stream.height, stream.pix_fmt = decoded.width, decoded.height, "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for index, frame in enumerate(source.decode(decoded)):
            pixels = frame.to_ndarray(format="rgb24")
            pixels[bar] = _BAR
            picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            picture.pts = index
            target.mux(stream.encode(picture))
        target.mux(stream.encode(None))
    return output


def _parser_ms_per_face(repeats: int) -> float:
    network = BiSeNet().eval()
    faces = torch.rand(_PARSER_BATCH, 3, _PARSER_SIZE, _PARSER_SIZE)
    times = []
    with torch.inference_mode():
        network(faces[:1])  # the first call allocates
        for _ in range(repeats):
            started = time.perf_counter()
            network(faces)
            times.append(time.perf_counter() - started)
    return round(float(np.median(times)) / _PARSER_BATCH * 1000, 1)


__all__ = ["mask_figures"]
