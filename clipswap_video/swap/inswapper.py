"""The `inswapper` backend: insightface's inswapper_128 ONNX swapper, loaded and
run by insightface's own model zoo (`insightface.model_zoo.get_model`, which
builds its `INSwapper` and `ArcFaceONNX` classes on an onnxruntime session).

The network takes a 128 px target crop aligned by insightface's `norm_crop`
(faces.align, alignment "insightface"), RGB in [0, 1], and a 512-d latent: the
source's unit ArcFace embedding (buffalo_l's w600k_r50, on insightface's
112 px crop of the source photo) times the file's own `emap` matrix (its last
initializer), normalised again. It returns the swapped crop, RGB in [0, 1].
Weights: insightface, non-commercial research use.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipswap_video.config_sections import SwapSettings
from clipswap_video.errors import CorruptWeightsError, MissingWeightsError
from clipswap_video.faces import AlignmentName, SourceIdentity
from clipswap_video.faces.identity import mean_embedding
from clipswap_video.faces.insightface_zoo import load_zoo_model
from clipswap_video.faces.onnx_session import onnx_providers
from clipswap_video.swap.backend import CropBatch, SwappedBatch
from clipswap_video.swap.choice import find_inswapper_weights, missing_inswapper_reason
from clipswap_video.swap.device import resolve_device


class InswapperBackend:
    """insightface's INSwapper on the engine's 128 px crops, the latent from ArcFaceONNX."""

    name = "inswapper"
    crop_size = 128
    alignment: AlignmentName = "insightface"

    def __init__(
        self, weights_dir: Path | None = None, settings: SwapSettings | None = None
    ) -> None:
        settings = settings or SwapSettings()
        self.device = resolve_device(settings.device)
        found = find_inswapper_weights(weights_dir)
        if found is None:
            raise MissingWeightsError(
                f"the inswapper swapper cannot load: {missing_inswapper_reason(weights_dir)}; "
                "see weights/README.md, or use --swapper classic"
            )
        import onnxruntime  # deferred: importing the interface must not load it

        available = onnxruntime.get_available_providers()
        providers = onnx_providers(settings.device, available, key="swap.device")
        self.model: Any = load_zoo_model(found[0], "INSwapper", providers)
        self.recogniser: Any = load_zoo_model(found[1], "ArcFaceONNX", providers)
        self.emap = _emap(found[0], self.model)
        if self.recogniser.output_shape[-1] != self.emap.shape[0]:
            raise CorruptWeightsError(
                f"{found[1]} gives {self.recogniser.output_shape[-1]}-d embeddings, "
                f"expected {self.emap.shape[0]}: not buffalo_l's recogniser"
            )
        # A free (symbolic) batch dimension takes the whole batch in one call;
        # the released file's is fixed at 1, so it runs once per crop.
        self.batched = not isinstance(self.model.input_shape[0], int)
        self.input_type = _numpy_type(self.model.session.get_inputs()[0].type)
        self.latent: np.ndarray | None = None

    def prepare_source(self, identity: SourceIdentity) -> None:
        """The latent as INSwapper.get makes it: normed embedding @ emap, normalised.
        Several photos: the mean of their normed embeddings, re-normalised, first."""
        from insightface.app.common import Face as InsightfaceFace

        embeddings = []
        for image, face in zip(identity.images, identity.faces, strict=True):
            found = InsightfaceFace(kps=np.asarray(face.landmarks_5, np.float32))
            # ArcFaceONNX.get crops with norm_crop and swaps BGR -> RGB: it takes cv2's BGR.
            with warnings.catch_warnings():  # norm_crop calls a scikit-image API it deprecated
                warnings.simplefilter("ignore", FutureWarning)
                self.recogniser.get(np.ascontiguousarray(image[..., ::-1]), found)
            embeddings.append(found.normed_embedding)
        embedding = embeddings[0] if len(embeddings) == 1 else mean_embedding(embeddings)
        latent = np.dot(embedding.reshape((1, -1)), self.emap)
        latent /= np.linalg.norm(latent)
        self.latent = latent.astype(np.float32)

    def swap(self, batch: CropBatch) -> SwappedBatch:
        assert self.latent is not None, "prepare_source() first"
        # INSwapper.get feeds blobFromImage(BGR crop, 1 / 255, swapRB=True): RGB,
        # NCHW, pixel / 255. The engine's crops are RGB NCHW 0..255 already, so
        # INSwapper.forward's own (crop - input_mean) / input_std is all there is.
        crops = batch.crops.detach().float().cpu().numpy().astype(self.input_type)
        latent = self.latent.astype(self.input_type)
        if self.batched:
            latents = np.repeat(latent, len(crops), axis=0)
            swapped = self.model.forward(crops, latents)
        else:
            swapped = np.concatenate([self.model.forward(c[None], latent) for c in crops])
        pixels = torch.from_numpy(np.asarray(swapped, np.float32) * 255.0)
        return SwappedBatch(pixels.to(self.device))  # RGB 0..255, unclipped


def _emap(path: Path, model: Any) -> np.ndarray:
    """INSwapper's emap, checked: (512, width of its latent input)."""
    emap = np.asarray(model.emap, np.float32)
    width = model.session.get_inputs()[1].shape[-1]
    width = width if isinstance(width, int) else 512
    if emap.ndim != 2 or emap.shape[0] != 512 or emap.shape[1] != width:
        raise CorruptWeightsError(
            f"{path} has no emap (its last initializer is {emap.shape}, expected (512, {width})): "
            "not insightface's inswapper file"
        )
    return emap


def _numpy_type(onnx_type: str) -> type[np.floating[Any]]:
    return np.float16 if onnx_type == "tensor(float16)" else np.float32


__all__ = ["InswapperBackend"]
