"""CLIP image embeddings (open_clip) for the identity vector and training losses.

ClipSwap's framework figure (Yee, Mishra, Dhall, FG 2024) builds the identity vector as
ArcFace(source) concatenated with a CLIP image embedding of the source, while the
released inference.py feeds ArcFace alone (open question Q1 in
docs/models.md, sections 1 and 4). A generator whose identity input is
wider than 512 therefore gets this embedding appended by the swap backend.

    encoder = ClipImageEncoder("ViT-B-32", "weights/clip-vit-b-32.safetensors")
    identity_part = encoder.embed([source_rgb])  # (1, 512), unit length

Weights never download: ``weights`` is a checkpoint file, or an open_clip
pretrained tag whose file is already in the Hugging Face cache.
"""

from __future__ import annotations

import difflib
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError

from clipswap_video.arrays import RgbImage
from clipswap_video.errors import ConfigValueError, CorruptWeightsError, MissingWeightsError
from clipswap_video.models.torchvision_compat import ensure_torchvision

HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
"""open_clip's default file names in a Hugging Face repo (open_clip/constants.py)."""

__all__ = ["ClipImageEncoder", "load_clip_model"]

_UNLOADABLE = (
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
    LookupError,
    AttributeError,
    StopIteration,
    pickle.UnpicklingError,
    SafetensorError,
)
"""What torch.load, safetensors and open_clip's strict load raise on a truncated,
foreign or garbage file (no single base class covers them)."""


class ClipImageEncoder:
    """An open_clip model's image tower, in eval mode, with its own preprocessing.

    Args:
        model_name: an open_clip model name (``open_clip.list_models()``), e.g.
            "ViT-B-32"; OpenAI's weights need the "-quickgelu" variant of a name.
        weights: a checkpoint file (.safetensors, or .pt/.bin loadable with
            ``torch.load(weights_only=True)``), or an open_clip pretrained tag
            ("laion2b_s34b_b79k") whose file is already cached; a tag also sets
            its preprocessing (mean/std/resize) and QuickGELU, as open_clip's
            pretrained table says.
        device: where the model runs.

    Raises:
        ConfigValueError: an unknown model name.
        MissingWeightsError: no weights, no such file, or a tag not yet cached.
        CorruptWeightsError: a file that does not load as this model.
    """

    def __init__(
        self, model_name: str, weights: str | Path | None, device: torch.device | str = "cpu"
    ) -> None:
        open_clip = _import_open_clip()
        model, self._preprocess = load_clip_model(model_name, weights)
        self._model = model.to(device).eval().requires_grad_(False)
        self._embedding_dim = int(open_clip.get_model_config(model_name)["embed_dim"])
        self.device = torch.device(device)

    @property
    def embedding_dim(self) -> int:
        """Length D of one embedding."""
        return self._embedding_dim

    @torch.no_grad()
    def embed(self, images: Sequence[RgbImage]) -> torch.Tensor:
        """(N, D) float32 embeddings of uint8 RGB (H, W, 3) images, L2-normalised.

        Unit length because CLIP is trained on cosine similarity: the norm of its
        projection carries no meaning and differs between checkpoints, and a unit
        vector keeps the CLIP half of the identity vector on one scale whichever
        weights are used. Whether ClipSwap normalised is not published (Q1, Q5);
        a generator trained on raw projections would need ``normalize=False`` here.
        """
        if not images:
            return torch.empty(0, self.embedding_dim, device=self.device)
        pixels = torch.stack([self._preprocess(_to_pil(image)) for image in images])
        return self._model.encode_image(pixels.to(self.device), normalize=True)


def load_clip_model(
    model_name: str,
    weights: str | Path | None,
    *,
    keys: tuple[str, str] = ("[swap] clip_model", "[swap] clip_weights"),
) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
    """open_clip's model and its eval transform, from a checkpoint file or a
    cached pretrained tag (never downloaded); `keys` name the two settings in
    the error lines. Raises as ClipImageEncoder does."""
    open_clip = _import_open_clip()
    _check_model_name(open_clip, model_name, keys[0])
    path, tag = _resolve_weights(open_clip, model_name, weights, keys[1])
    return _load(open_clip, model_name, path, tag)


def _import_open_clip() -> ModuleType:
    ensure_torchvision()  # open_clip imports torchvision, whose ops may not load here
    import open_clip

    return open_clip


def _check_model_name(open_clip: ModuleType, model_name: str, key: str) -> None:
    known = open_clip.list_models()
    if model_name not in known:
        close = ", ".join(difflib.get_close_matches(model_name, known, n=5)) or "none"
        raise ConfigValueError(
            f"unknown open_clip model {model_name!r} ({key}); close names: {close}"
        )


def _resolve_weights(
    open_clip: ModuleType, model_name: str, weights: str | Path | None, key: str
) -> tuple[Path, str | None]:
    """The checkpoint file to load, and the pretrained tag it came from (if any)."""
    how = f"set {key} to a local checkpoint file of that model"
    if not weights:
        raise MissingWeightsError(f"CLIP model {model_name} has no weights: {how}")
    path = Path(weights).expanduser()
    if path.is_file():
        return path, None
    tag = str(weights)
    source = open_clip.get_pretrained_cfg(model_name, tag).get("hf_hub")
    if source is None:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise MissingWeightsError(
            f"CLIP weights {tag!r} for {model_name}: no such file, and not one of its"
            f" {len(tags)} open_clip pretrained tags ({_shorten(', '.join(tags))}); {how}"
        )
    from huggingface_hub import try_to_load_from_cache  # open_clip's dependency; slow import

    repo_id, names = _hub_files(source)
    for name in names:
        cached = try_to_load_from_cache(repo_id, name)
        if isinstance(cached, str):
            return Path(cached), tag
    raise MissingWeightsError(
        f"CLIP weights {model_name} {tag!r} are not in the Hugging Face cache and are never"
        f" downloaded: get {names[0]} from huggingface.co/{repo_id} and {how}"
    )


def _hub_files(source: str) -> tuple[str, tuple[str, str]]:
    """open_clip's ``hf_hub`` entry "org/repo/[file]" as its repo and file names,
    the safetensors twin first, in the order open_clip's download tries them."""
    repo_id, filename = os.path.split(source)
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return repo_id, (HF_SAFE_WEIGHTS_NAME, filename)
    return repo_id, (f"{Path(filename).stem}.safetensors", filename)


def _load(
    open_clip: ModuleType, model_name: str, path: Path, tag: str | None
) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
    """open_clip's model (an untyped CLIP, CustomTextCLIP or CoCa) and its eval
    transform, loaded strictly on the CPU."""
    pretrained: dict[str, Any] = open_clip.get_pretrained_cfg(model_name, tag) if tag else {}
    try:
        model, preprocess = open_clip.create_model_from_pretrained(
            model_name,
            pretrained=str(path),
            force_quick_gelu=pretrained.get("quick_gelu", False),
            image_mean=pretrained.get("mean"),
            image_std=pretrained.get("std"),
            image_interpolation=pretrained.get("interpolation"),
            image_resize_mode=pretrained.get("resize_mode"),
        )
    except _UNLOADABLE as error:
        reason = _shorten((str(error).strip().splitlines() or [""])[0])
        raise CorruptWeightsError(
            f"{path} does not load as open_clip {model_name} weights"
            f" ({type(error).__name__}: {reason}); is it a checkpoint of that model?"
        ) from error
    return model, preprocess


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _to_pil(image: RgbImage) -> Image.Image:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}")
    return Image.fromarray(image)
