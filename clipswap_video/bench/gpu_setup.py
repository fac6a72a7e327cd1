"""What the GPU check's parts share: their options (full size on a GPU, or
`small` for the CPU rehearsal), their results file, the random-weight networks
and the demo clip with its known faces."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from clipswap_video.atomic import write_text_atomic
from clipswap_video.bench.known_faces import KnownFacesDetector
from clipswap_video.config_sections import FaceSettings
from clipswap_video.demo import DemoMedia
from clipswap_video.faces import FaceDetector
from clipswap_video.models.facedancer_spec import GeneratorSpec
from clipswap_video.models.retinaface import RetinaFace, RetinaFaceSpec

SMALL_GENERATOR = GeneratorSpec(channels=(4, 4, 4, 4, 4, 4), mapping_depth=1, mapping_size=8)
"""The full graph's layers at 4 channels: the rehearsal runs every layer type."""
SMALL_DETECTOR = RetinaFaceSpec(
    blocks=(1, 1, 1, 1),
    widths=(8, 16, 32, 64),
    features=("conv3_block1_out", "conv4_block1_out", "conv5_block1_out"),
    out_channels=16,
)
COST_MIN_SCORE = 0.99
"""The random detector's threshold: few candidates reach NMS, as with real weights
on real faces (at 0.5, random scores would send it thousands)."""


@dataclass(frozen=True)
class PartOptions:
    """Where a part runs and how big it is."""

    device: str
    small: bool
    work: str
    budget_s: float

    @property
    def folder(self) -> Path:
        return Path(self.work)

    @property
    def generator_batches(self) -> tuple[int, ...]:
        return (1, 2) if self.small else (1, 8, 16, 32)

    @property
    def engine_batch(self) -> int:
        return 2 if self.small else 16

    @property
    def clip_size(self) -> tuple[int, int]:
        return (320, 240) if self.small else (1920, 1080)

    @property
    def clip_seconds(self) -> float:
        return 0.5 if self.small else 8.0

    def precisions(self, device: torch.device) -> tuple[str, ...]:
        """fp32 and bf16 everywhere, fp16 on CUDA (the CPU refuses it)."""
        return ("fp32", "fp16", "bf16") if device.type == "cuda" else ("fp32", "bf16")

    def job_precision(self, device: torch.device) -> str:
        """The precision a job on this device would choose: bf16 where the GPU has it."""
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"


class Results:
    """A part's figures, written to its file at every change (a part stopped
    for time keeps what it had measured)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.figures: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.figures[key] = value
        write_text_atomic(self.path, json.dumps(self.figures, indent=1))

    def update(self, figures: dict[str, Any]) -> None:
        for key, value in figures.items():
            self[key] = value


def generator_spec(small: bool) -> GeneratorSpec:
    return SMALL_GENERATOR if small else GeneratorSpec()


def known_faces(media: DemoMedia, settings: FaceSettings, small: bool) -> FaceDetector:
    """The demo's known faces at the cost of RetinaFace-Res50 (random weights,
    full size; `small`: a narrow one) run on `settings.device` on every picture
    and window the job asks about."""
    from clipswap_video.faces.retinaface_backend import RetinaFaceDetector, torch_device

    device = torch_device(settings.device)
    network = RetinaFace(SMALL_DETECTOR if small else RetinaFaceSpec(), device=device).eval()
    cost_settings = replace(settings, min_score=COST_MIN_SCORE, detector="retinaface")
    cost = RetinaFaceDetector(cost_settings, network=network)
    return KnownFacesDetector.for_demo(media, cost=cost)


__all__ = [
    "COST_MIN_SCORE",
    "SMALL_DETECTOR",
    "SMALL_GENERATOR",
    "PartOptions",
    "Results",
    "generator_spec",
    "known_faces",
]
