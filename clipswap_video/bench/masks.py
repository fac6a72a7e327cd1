"""What the masks cost, for `clipswap-video bench`: the BiSeNet face parser
(the architecture of 79999_iter.pth, random weights) per face on this machine,
and the classic swap end to end with the default mask, then with the occlusion
and region masks on stand-in models far cheaper than the real networks (so the
difference is mostly the masks' work around their models: resizing to 256 and
512 px and back, the 19-class arg-max, the distance-based feather, the per-track
smoothing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipswap_video.bench.mask_standins import write_parser, write_xseg
from clipswap_video.config import load_settings
from clipswap_video.demo import write_demo_media
from clipswap_video.pipeline import run_video
from clipswap_video.swap.bisenet import BiSeNet
from clipswap_video.swap.stage import FaceSwapper

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
    return results


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
