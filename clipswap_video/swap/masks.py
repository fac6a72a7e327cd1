"""The models that take pixels out of a swapped face (`composite.masks`):
`occlusion`, an XSeg segmentation of what covers the face (hands, hair,
microphones), and `region`, a BiSeNet face parser whose classes a user keeps
or swaps. Both read the target crops of a frame in one batch.

The files' conventions (docs/models.md, section 8):
- XSeg, as DeepFaceLab trains it and FaceFusion ships it (xseg_1/2/3.onnx):
  (N, 256, 256, 3) channels last, BGR, pixel / 255; out (N, 256, 256, 1),
  1 where the face shows.
- BiSeNet face parsing, trained on CelebAMask-HQ's 512 px faces: (N, 3, 512, 512)
  RGB, ImageNet mean/std on pixel / 255; out (N, 19, 512, 512) class scores.
  FaceFusion's bisenet_resnet_18/34.onnx, or the PyTorch 79999_iter.pth (bisenet.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from clipswap_video.config_sections import CompositeSettings, RegionName
from clipswap_video.errors import ConfigValueError, CorruptWeightsError
from clipswap_video.faces import AlignmentName
from clipswap_video.faces.onnx_session import first_output, onnx_providers, open_session
from clipswap_video.swap.backend import CropBatch, SwapBackend, SwappedBatch
from clipswap_video.weights import setting_or_found

OCCLUDERS = ("facefusion.xseg_1", "facefusion.xseg_2", "facefusion.xseg_3")
"""Manifest entries `composite.occluder` falls back to, preferred first."""
PARSERS = ("facefusion.bisenet_resnet_34", "facefusion.bisenet_resnet_18", "face_parsing.79999")
"""Manifest entries `composite.parser` falls back to, preferred first."""

REGION_CLASSES: dict[RegionName, int] = {
    "skin": 1,
    "left-eyebrow": 2,
    "right-eyebrow": 3,
    "left-eye": 4,
    "right-eye": 5,
    "glasses": 6,
    "nose": 10,
    "mouth": 11,
    "upper-lip": 12,
    "lower-lip": 13,
}
"""CelebAMask-HQ's class index of each region name."""
MOUTH_CLASS = REGION_CLASSES["mouth"]  # the mouth interior: teeth, tongue
PARSER_CLASSES = 19
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)


class Occluder:
    """An XSeg model: where each target crop's face is not covered."""

    def __init__(self, path: Path, device: str) -> None:
        self.session, self.path = _session(path, device), path
        first = self.session.get_inputs()[0]
        shape = tuple(first.shape)
        if len(shape) != 4 or shape[3] != 3 or not _square(shape[1:3]):
            raise CorruptWeightsError(
                f"{path} takes {_shape_text(shape)}, expected (N, S, S, 3): not an XSeg "
                "occlusion model"
            )
        self.input = first.name
        self.size = shape[1] if isinstance(shape[1], int) else 256
        self.batched = not isinstance(shape[0], int)  # a fixed batch: one face per call

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB crops -> (N, S, S) float32: 1 = face, 0 = covered."""
        blob = np.stack([_resized(crop[..., ::-1], self.size) for crop in crops])
        blob = blob.astype(np.float32) / 255.0
        if self.batched:
            found = self._run(blob)
        else:
            found = np.concatenate([self._run(one[None]) for one in blob])
        if found.ndim == 4:  # (N, S, S, 1), or (N, 1, S, S) in other exports
            found = found[..., 0] if found.shape[-1] == 1 else found[:, 0]
        if found.ndim != 3 or len(found) != len(crops):
            raise CorruptWeightsError(f"{self.path} gives {found.shape}, expected (N, S, S, 1)")
        side = crops.shape[1]
        return np.stack([_resized(np.clip(one, 0, 1), side) for one in found])

    def _run(self, blob: np.ndarray) -> np.ndarray:
        return first_output(self.session, {self.input: blob}, str(self.path))


class FaceParser:
    """A BiSeNet face parser: the CelebAMask-HQ class of each crop pixel."""

    def __init__(self, path: Path, device: str) -> None:
        self.path = path
        self.size = 512
        if path.suffix.lower() == ".onnx":
            self.session: Any = self._open_onnx(path, device)
            self.network: Any = None
        else:
            from clipswap_video.swap.bisenet import load_bisenet
            from clipswap_video.swap.device import resolve_device
            from clipswap_video.swap.enhance import read_state_dict

            state = read_state_dict(path)
            try:
                network = load_bisenet(state)
            except ValueError as error:
                raise CorruptWeightsError(f"{path}: {error}") from None
            self.device = resolve_device(device)
            self.network, self.session = network.to(self.device), None

    def _open_onnx(self, path: Path, device: str) -> Any:
        session = _session(path, device)
        shape = tuple(session.get_inputs()[0].shape)
        classes = tuple(session.get_outputs()[0].shape)
        if len(shape) != 4 or shape[1] != 3 or not _square(shape[2:]) or len(classes) != 4:
            raise CorruptWeightsError(
                f"{path} takes {_shape_text(shape)}, expected (N, 3, S, S): not a BiSeNet "
                "face parser"
            )
        if isinstance(classes[1], int) and classes[1] != PARSER_CLASSES:
            raise CorruptWeightsError(
                f"{path} tells {classes[1]} classes apart, expected {PARSER_CLASSES} "
                "(CelebAMask-HQ's): not a BiSeNet face parser"
            )
        self.input = session.get_inputs()[0].name
        self.size = shape[2] if isinstance(shape[2], int) else 512
        self.batched = not isinstance(shape[0], int)
        return session

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB crops -> (N, S, S) uint8 class indices."""
        blob = np.stack([_resized(crop, self.size) for crop in crops]).astype(np.float32)
        blob = (blob.transpose(0, 3, 1, 2) / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD
        scores = self._scores(blob.astype(np.float32))
        if scores.ndim != 4 or scores.shape[1] != PARSER_CLASSES or len(scores) != len(crops):
            raise CorruptWeightsError(
                f"{self.path} gives {scores.shape}, expected (N, {PARSER_CLASSES}, S, S)"
            )
        labels = scores.argmax(1).astype(np.uint8)
        side = crops.shape[1]
        return np.stack(
            [cv2.resize(one, (side, side), interpolation=cv2.INTER_NEAREST) for one in labels]
        )

    def _scores(self, blob: np.ndarray) -> np.ndarray:
        if self.network is not None:
            with torch.inference_mode():
                scores = self.network(torch.from_numpy(blob).to(self.device))
            return np.asarray(scores.float().cpu().numpy())
        if self.batched:
            return first_output(self.session, {self.input: blob}, str(self.path))
        return np.concatenate(
            [first_output(self.session, {self.input: one[None]}, str(self.path)) for one in blob]
        )


class Masked:
    """A swap backend whose batches also run the mask models, on the target crops
    of the engine's batch (several frames' faces in one call, on its device)."""

    def __init__(self, inner: SwapBackend, models: MaskModels, keep_mouth: bool) -> None:
        self.inner, self.models, self.keep_mouth = inner, models, keep_mouth
        self.name, self.crop_size = inner.name, inner.crop_size
        self.alignment: AlignmentName = inner.alignment
        self.device = inner.device

    def prepare_source(self, identity: Any) -> None:
        self.inner.prepare_source(identity)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        swapped = self.inner.swap(batch)
        targets = batch.crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        hidden, mouth = self.models.hidden(targets)
        if self.keep_mouth and mouth is not None:
            hidden |= mouth
        return replace(swapped, hidden=hidden)


def with_masks(
    backend: SwapBackend, settings: CompositeSettings, device: str, weights_dir: Path | None
) -> SwapBackend:
    """`backend`, with the mask models `settings` ask for run on its batches (none:
    as it is)."""
    models = MaskModels.load(settings, device, weights_dir)
    return backend if models is None else Masked(backend, models, settings.keep_mouth)


@dataclass
class MaskModels:
    """The occluder and parser `composite.masks` asks for, loaded once per job."""

    occluder: Occluder | None
    parser: FaceParser | None
    regions: tuple[int, ...]

    @classmethod
    def load(
        cls, settings: CompositeSettings, device: str, weights_dir: Path | None
    ) -> MaskModels | None:
        """The models of `settings` (None when no mask needs one).

        Raises:
            MissingWeightsError: a model's file is not there.
            CorruptWeightsError: a file that is not such a model.
            ConfigValueError: a region mask with no regions.
        """
        occluder = parser = None
        if "occlusion" in settings.masks:
            path = find_mask_model(settings.occluder, OCCLUDERS, "occlusion", weights_dir)
            occluder = Occluder(path, device)
        if "region" in settings.masks:
            if not settings.regions:
                raise ConfigValueError(
                    "composite.masks has region but composite.regions is empty: nothing to swap"
                )
            path = find_mask_model(settings.parser, PARSERS, "region", weights_dir)
            parser = FaceParser(path, device)
        if occluder is None and parser is None:
            return None
        return cls(occluder, parser, tuple(REGION_CLASSES[name] for name in settings.regions))

    def hidden(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Where the swap must not show in each target crop ((N, S, S) bool: covered,
        or a region not swapped), and the parser's mouth interior (None without it)."""
        hidden = np.zeros(targets.shape[:3], bool)
        mouth = None
        if self.occluder is not None:
            hidden |= self.occluder(targets) < 0.5
        if self.parser is not None:
            labels = self.parser(targets)
            hidden |= ~np.isin(labels, self.regions)
            mouth = labels == MOUTH_CLASS
        return hidden, mouth


def find_mask_model(
    setting: str, names: tuple[str, ...], mask: str, weights_dir: Path | None
) -> Path:
    """The model file of the `mask` mask: the one `setting` names, else the first of
    `names` in the weights folders.

    Raises:
        MissingWeightsError: neither is there.
    """
    key = "composite.occluder" if mask == "occlusion" else "composite.parser"
    return setting_or_found(setting, key, names, weights_dir, f"the {mask} mask")


def _session(path: Path, device: str) -> Any:
    """An onnxruntime session of `path` on `swap.device`."""
    import onnxruntime  # deferred: importing the interface must not load it

    providers = onnx_providers(device, onnxruntime.get_available_providers(), key="swap.device")
    return open_session(path, providers)


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape[0] == side:
        return np.ascontiguousarray(image)
    shrink = image.shape[0] > side
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (side, side), interpolation=interpolation)


def _square(sides: tuple[Any, ...]) -> bool:
    """Two spatial sides that are equal, or left free by the export."""
    return not all(isinstance(side, int) for side in sides) or sides[0] == sides[1]


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + ")"


__all__ = [
    "MOUTH_CLASS",
    "OCCLUDERS",
    "PARSERS",
    "REGION_CLASSES",
    "FaceParser",
    "MaskModels",
    "Masked",
    "Occluder",
    "find_mask_model",
    "with_masks",
]
