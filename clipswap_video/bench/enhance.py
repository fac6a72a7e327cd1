"""Flicker a face restorer adds, for `clipswap-video bench`: the classic swap on a
nearly still face (where added flicker shows most) alone, then with the enhancer
wrapper (swap/enhance.py) around it and two stand-in restorers at the default
blend: the same noise texture on every call (a deterministic restorer, as GFPGAN
with its stored noise) and fresh noise on every call (GFPGAN's default). The
figure is `evaluate`'s flicker ratio (output over input inside the face boxes)
and how much each restorer adds to the swap's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clipswap_video.config import load_settings
from clipswap_video.config_sections import EnhanceSettings
from clipswap_video.demo import write_demo_media
from clipswap_video.pipeline import run_video
from clipswap_video.reports.evaluate import evaluate
from clipswap_video.swap.enhance import Enhanced, Restorer
from clipswap_video.swap.stage import FaceSwapper

AMPLITUDE = 20.0
"""Grey levels of the stand-ins' noise, either way: detail a restorer might add."""


class FixedTexture:
    """The crop plus one fixed-seed noise texture, the same on every call."""

    def __init__(self, size: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.texture = (torch.rand(1, 3, size, size, generator=generator) * 2 - 1) * AMPLITUDE

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops + self.texture.to(crops.device)


def fresh_noise(crops: torch.Tensor) -> torch.Tensor:
    """The crop plus new noise on every call."""
    return crops + (torch.rand_like(crops) * 2 - 1) * AMPLITUDE


def enhancer_flicker_figures(folder: Path, seconds: float = 4.0) -> dict[str, Any]:
    """Flicker ratios of the swap alone and with each stand-in restorer, and the
    share each restorer adds."""
    clip = write_demo_media(folder / "still", seconds=seconds, width=640, height=360, still=True)
    settings = load_settings(overrides=["swap.swapper=classic"])
    enhance = EnhanceSettings()
    restorers: dict[str, Restorer | None] = {
        "none": None,
        "fixed": FixedTexture(enhance.size),
        "fresh": fresh_noise,
    }
    ratios = {}
    for name, restorer in restorers.items():
        swapper = FaceSwapper(settings, [clip.source_image])
        if restorer is not None:
            swapper.backend = Enhanced(swapper.backend, restorer, enhance.size, enhance.blend)
        output = folder / f"enhancer_{name}.mp4"
        run_video(clip.source_image, clip.video, output, settings, swapper=swapper)
        metrics = evaluate(clip.source_image, clip.video, output, settings, arcface=False)
        ratios[name] = metrics["flicker_ratio"]
    return {
        "enhancer_flicker_none": ratios["none"],
        "enhancer_flicker_fixed": ratios["fixed"],
        "enhancer_flicker_fresh": ratios["fresh"],
        "enhancer_flicker_added_fixed": round(ratios["fixed"] / ratios["none"] - 1, 3),
        "enhancer_flicker_added_fresh": round(ratios["fresh"] / ratios["none"] - 1, 3),
    }


__all__ = ["FixedTexture", "enhancer_flicker_figures", "fresh_noise"]
