"""`evaluate`'s second identity column: cosine similarities through ArcFace-Res50
(Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face
Recognition", CVPR 2019), when its weights are found.

The clipswap swap computes its source identity with this same network, so a
swap can score well here by fooling it: these figures sit beside dlib's
`identity_transfer`, the independent judge, and never replace it. Faces are
aligned to the 112 px ArcFace template from their 5 landmarks with
`cv2.warpAffine` and fed RGB in [0, 1], in fp32, as the swap feeds the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from clipswap_video.arrays import RgbImage
from clipswap_video.faces import Face, alignment_matrices
from clipswap_video.models import create_model
from clipswap_video.swap.choice import IDENTITY
from clipswap_video.swap.device import resolve_device
from clipswap_video.weights import WeightEntry, find_weight, load_manifest, looked_for

NOTE = (
    "ArcFace-Res50, the identity network the clipswap swap itself uses: "
    "not an independent judge; identity_transfer (dlib) is"
)
SUMMARY_KEYS = (
    "id_cos_source_mean",
    "id_cos_source_p5",
    "id_cos_target_mean",
    "id_cos_target_p5",
    "id_cos_temporal",
    "id_cos_temporal_input",
)
PER_FACE_KEYS = ("id_cos_source", "id_cos_target")
_CROP = 112


class ArcFaceEmbedder:
    """ArcFace-Res50 loaded once; unit embeddings of aligned faces.

    Args:
        path: the .h5 or converted .safetensors file.
        device: a `swap.device` value (auto, cpu, cuda[:N]).
    """

    def __init__(self, path: Path, device: str) -> None:
        self.device = resolve_device(device)
        self.net = create_model(path, device=self.device, dtype=torch.float32)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, D) unit rows for N aligned 112 px uint8 RGB crops."""
        batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            output = self.net(batch.to(self.device))
        assert isinstance(output, torch.Tensor)
        raw = output.float().cpu().numpy()
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)


def aligned_crops(image: RgbImage, faces: list[Face] | tuple[Face, ...]) -> list[np.ndarray]:
    """Each face of `image` warped onto the 112 px ArcFace template (as the swap's source)."""
    matrices = alignment_matrices(np.stack([face.landmarks_5 for face in faces]), _CROP)
    return [cv2.warpAffine(image, matrix, (_CROP, _CROP)) for matrix in matrices]


def find_arcface(weights_dir: Path | None) -> Path | None:
    """ArcFace-Res50's file, looked up as the clipswap backend looks it up."""
    return find_weight(_manifest_entry(), weights_dir)


@dataclass
class IdentityCosines:
    """Cosines of each sampled output face to the source, to the input face at
    the same place, and to the same track's output face in the previous sampled frame.

    Args:
        embedder: the network.
        source: the source face's unit embedding.
    """

    embedder: ArcFaceEmbedder
    source: np.ndarray
    to_source: list[float] = field(default_factory=list)
    to_target: list[float] = field(default_factory=list)
    temporal: list[float] = field(default_factory=list)
    temporal_input: list[float] = field(default_factory=list)  # the same on IN: a baseline
    previous: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add(self, before: RgbImage, after: RgbImage, faces: list[Face]) -> None:
        """One sampled frame: `faces` as the analysis found them in `before`."""
        # Input and output crops of every face in one network call.
        embeddings = self.embedder.embed(aligned_crops(before, faces) + aligned_crops(after, faces))
        inputs, outputs = embeddings[: len(faces)], embeddings[len(faces) :]
        self.to_source.extend(float(cosine) for cosine in outputs @ self.source)
        self.to_target.extend(float(cosine) for cosine in (outputs * inputs).sum(axis=1))
        current = {
            face.track_id: (out, inp) for face, out, inp in zip(faces, outputs, inputs, strict=True)
        }
        for track_id, (out, inp) in current.items():
            if track_id is not None and track_id in self.previous:
                out_before, inp_before = self.previous[track_id]
                self.temporal.append(float(out @ out_before))
                self.temporal_input.append(float(inp @ inp_before))
        # Only the previous sampled frame: a track absent from it starts again.
        self.previous = {i: pair for i, pair in current.items() if i is not None}

    def figures(self) -> dict[str, Any]:
        """The summary keys, the note, then the per-face lists."""
        return {
            "id_cos_source_mean": _mean(self.to_source),
            "id_cos_source_p5": _p5(self.to_source),
            "id_cos_target_mean": _mean(self.to_target),
            "id_cos_target_p5": _p5(self.to_target),
            "id_cos_temporal": _mean(self.temporal),
            "id_cos_temporal_input": _mean(self.temporal_input),
            "id_cos_note": NOTE,
            "id_cos_source": [round(value, 4) for value in self.to_source],
            "id_cos_target": [round(value, 4) for value in self.to_target],
        }


def unmeasured(weights_dir: Path | None) -> dict[str, Any]:
    """The same keys when no ArcFace-Res50 file is found: null, and a note
    that says where it was looked for."""
    note = f"not measured: looked for {looked_for(_manifest_entry(), weights_dir)}; see --weights"
    return {**dict.fromkeys(SUMMARY_KEYS), "id_cos_note": note, **dict.fromkeys(PER_FACE_KEYS)}


def _manifest_entry() -> WeightEntry:
    return next(entry for entry in load_manifest() if entry.name == IDENTITY)


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _p5(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 5)), 4) if values else None


__all__ = [
    "NOTE",
    "PER_FACE_KEYS",
    "SUMMARY_KEYS",
    "ArcFaceEmbedder",
    "IdentityCosines",
    "aligned_crops",
    "find_arcface",
    "unmeasured",
]
