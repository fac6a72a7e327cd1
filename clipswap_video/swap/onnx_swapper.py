"""The `onnx` backend: FaceFusion's ONNX swappers (`--swapper onnx:NAME`), run with
onnxruntime on the engine's crops, each by its facts in swap.onnx_models.

Every one of them has an input `target` (the aligned crop, N x 3 x S x S) and an
input `source`: the source's identity as a 512-d vector (w600k_r50's embedding,
for some models mapped into the model's own identity space by an embedding
converter file) or as an aligned source crop. The first output is the swapped
crop. The source's w600k_r50 embedding comes from insightface's ArcFaceONNX, as
for inswapper.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from clipswap_video.config_sections import SwapSettings
from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.faces import SourceIdentity, alignment_matrices
from clipswap_video.faces.identity import mean_embedding
from clipswap_video.faces.insightface_zoo import load_zoo_model
from clipswap_video.faces.onnx_session import first_output, onnx_providers, open_session
from clipswap_video.swap.backend import CropBatch, SwappedBatch
from clipswap_video.swap.choice import RECOGNISER
from clipswap_video.swap.device import resolve_device
from clipswap_video.swap.onnx_models import MODELS, OnnxSwapperModel
from clipswap_video.weights import find_weight, load_manifest, search_dirs

EMBEDDING_WIDTH = 512


def onnx_model(name: str) -> OnnxSwapperModel:
    """The listed model `name`.

    Raises:
        ConfigValueError: no name, or one whose facts are not established here.
    """
    model = MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(MODELS))
        given = (
            f"swap.model = {name!r} is not a known ONNX swapper"
            if name
            else ("the onnx swapper needs a model: --swapper onnx:NAME or swap.model")
        )
        raise ConfigValueError(f"{given}; known: {known} (docs/models.md)")
    return model


class OnnxSwapperBackend:
    """One FaceFusion swapper on the engine's crops, with its source prepared once."""

    name = "onnx"

    def __init__(
        self, weights_dir: Path | None = None, settings: SwapSettings | None = None
    ) -> None:
        settings = settings or SwapSettings()
        self.spec = onnx_model(settings.model)
        self.crop_size = self.spec.crop_size
        self.alignment = self.spec.alignment
        self.device = resolve_device(settings.device)
        swapper, recogniser, converter = _files(self.spec, weights_dir)
        import onnxruntime  # deferred: importing the interface must not load it

        providers = onnx_providers(
            settings.device, onnxruntime.get_available_providers(), key="swap.device"
        )
        self.session = open_session(swapper, providers)
        self.recogniser: Any = (
            load_zoo_model(recogniser, "ArcFaceONNX", providers) if recogniser else None
        )
        if self.recogniser is not None and self.recogniser.output_shape[-1] != EMBEDDING_WIDTH:
            raise CorruptWeightsError(
                f"{recogniser} gives {self.recogniser.output_shape[-1]}-d embeddings, expected "
                f"{EMBEDDING_WIDTH}: not w600k_r50"
            )
        self.converter = open_session(converter, providers) if converter is not None else None
        if self.converter is not None:
            _check_converter(converter, self.converter)
        inputs = {item.name: item for item in self.session.get_inputs()}
        _check_signature(swapper, self.spec, inputs)
        self.path = swapper
        self.input_type = _numpy_type(inputs["target"].type)
        self.source_type = _numpy_type(inputs["source"].type)
        # A free (symbolic) batch dimension takes the whole batch in one call.
        self.batched = not isinstance(inputs["target"].shape[0], int)
        self.mean = np.asarray(self.spec.mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(self.spec.std, np.float32).reshape(1, 3, 1, 1)
        self.source: np.ndarray | None = None

    def prepare_source(self, identity: SourceIdentity) -> None:
        """The `source` input: an aligned crop of the first photo, or the photos'
        w600k_r50 embedding (mean of several), converted as the model asks."""
        if self.spec.source == "image":
            self.source = _source_crop(identity, self.spec).astype(self.source_type)
            return
        pairs = zip(identity.images, identity.faces, strict=True)
        raw = [self._embedding(image, face) for image, face in pairs]
        if self.spec.source == "embedding":
            units = [vector / np.linalg.norm(vector) for vector in raw]
            vector = units[0] if len(units) == 1 else mean_embedding(units)
        else:
            assert self.converter is not None
            mean = np.mean(raw, axis=0, dtype=np.float32).reshape(1, -1)
            name = self.converter.get_inputs()[0].name
            vector = first_output(self.converter, {name: mean}, "the embedding converter").ravel()
            if self.spec.source == "converted_unit":
                vector = vector / np.linalg.norm(vector)
        self.source = np.asarray(vector, self.source_type).reshape(1, -1)

    def _embedding(self, image: np.ndarray, face: Any) -> np.ndarray:
        """w600k_r50's raw embedding of one photo's face (ArcFaceONNX's 112 px crop)."""
        from insightface.app.common import Face as InsightfaceFace

        found = InsightfaceFace(kps=np.asarray(face.landmarks_5, np.float32))
        with warnings.catch_warnings():  # norm_crop calls a scikit-image API it deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.recogniser.get(np.ascontiguousarray(image[..., ::-1]), found)  # takes BGR
        return np.asarray(found.embedding, np.float32)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        assert self.source is not None, "prepare_source() first"
        crops = batch.crops.detach().float().cpu().numpy() / 255.0
        blob = ((crops - self.mean) / self.std).astype(self.input_type)
        if self.batched:
            sources = np.repeat(self.source, len(blob), axis=0)
            swapped = self._run(blob, sources)
        else:
            swapped = np.concatenate([self._run(crop[None], self.source) for crop in blob])
        swapped = np.asarray(swapped, np.float32)
        if self.spec.output_normalised:
            swapped = swapped * self.std + self.mean
        return SwappedBatch(torch.from_numpy(swapped * 255.0).to(self.device))  # unclipped

    def _run(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        return first_output(self.session, {"target": target, "source": source}, str(self.path))


def _files(
    spec: OnnxSwapperModel, weights_dir: Path | None
) -> tuple[Path, Path | None, Path | None]:
    """(swapper, recogniser, converter) for `spec`; no recogniser for a model that
    takes a source crop, no converter for one that takes no converted embedding.

    Raises:
        MissingWeightsError: any of them is in no weights folder.
    """
    entries = {entry.name: entry for entry in load_manifest()}
    swapper = find_weight(entries[spec.entry], weights_dir)
    recogniser = None
    if spec.source != "image":
        recogniser = find_weight(entries[RECOGNISER], weights_dir)
    converters = [find_weight(entries[name], weights_dir) for name in spec.converters]
    converter = next((path for path in converters if path is not None), None)
    lacking = [entries[spec.entry].file] if swapper is None else []
    if recogniser is None and spec.source != "image":
        lacking.append(entries[RECOGNISER].file + " (or arcface_w600k_r50.onnx)")
    if spec.converters and converter is None:
        lacking.append(" or ".join(entries[name].file for name in spec.converters))
    if lacking or swapper is None:
        folders = ", ".join(str(folder) for folder in search_dirs(weights_dir))
        raise MissingWeightsError(
            f"the {spec.name} swapper cannot load: no {' and no '.join(lacking)} in "
            f"{folders} (`weights list` shows where each may sit), or use --swapper classic"
        )
    return swapper, recogniser, converter


def _check_signature(path: Path, spec: OnnxSwapperModel, inputs: dict[str, Any]) -> None:
    """The inputs `spec` says the file has: `target` (N, 3, S, S) and `source`.

    Raises:
        CorruptWeightsError: other inputs or shapes: not the file of that name.
    """
    size = spec.crop_size
    wanted: dict[str, tuple[int, ...]]
    if spec.source == "image":
        side = spec.source_size
        wanted = {"target": (3, size, size), "source": (3, side, side)}
    else:
        wanted = {"target": (3, size, size), "source": (EMBEDDING_WIDTH,)}
    shapes = {name: tuple(item.shape[1:]) for name, item in inputs.items()}
    fits = set(shapes) == set(wanted) and all(
        len(shapes[name]) == len(dims)
        and all(not isinstance(a, int) or a == b for a, b in zip(shapes[name], dims, strict=True))
        for name, dims in wanted.items()
    )
    if not fits:
        have = ", ".join(f"{name} {_shape_text(shape)}" for name, shape in shapes.items())
        want = ", ".join(f"{name} (N, {', '.join(map(str, d))})" for name, d in wanted.items())
        raise CorruptWeightsError(
            f"{path} takes {have or 'no inputs'}, expected {want}: not FaceFusion's {spec.name}"
        )


def _check_converter(path: Path | None, session: Any) -> None:
    """An embedding converter takes and gives 512-d vectors.

    Raises:
        CorruptWeightsError: other shapes: not a converter.
    """
    shapes = [tuple(item.shape[1:]) for item in (*session.get_inputs(), *session.get_outputs())]
    if len(shapes) != 2 or any(shape not in ((EMBEDDING_WIDTH,),) for shape in shapes):
        found = ", ".join(_shape_text(shape) for shape in shapes)
        raise CorruptWeightsError(
            f"{path} maps {found}, expected (N, {EMBEDDING_WIDTH}) to (N, {EMBEDDING_WIDTH}): "
            "not an embedding converter"
        )


def _source_crop(identity: SourceIdentity, spec: OnnxSwapperModel) -> np.ndarray:
    """The first photo's face aligned as the model's source input: (1, 3, s, s), RGB [0, 1]."""
    image, face = identity.images[0], identity.faces[0]
    size = spec.source_size
    matrix = alignment_matrices(face.landmarks_5, size, spec.source_alignment)[0]
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "(N, " + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + ")"


def _numpy_type(onnx_type: str) -> type[np.floating[Any]]:
    return np.float16 if onnx_type == "tensor(float16)" else np.float32


__all__ = ["OnnxSwapperBackend", "onnx_model"]
