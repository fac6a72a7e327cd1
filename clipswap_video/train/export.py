"""A trained generator as a converted Keras-graph file (the inverse of
`models.create_model(path, impl="modules")`), so it drops into a weights folder as
ClipSwap.safetensors and the `clipswap` swap backend runs it.

The file holds `generator_config(spec)` as its graph and every weight in Keras
layout (conv kernels HWIO, Dense kernels (in, out), AdaIN's four arrays by
position), under the names `generator_config` gives.

    export_generator(generator, Path("weights/ClipSwap.safetensors"))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clipswap_video import __version__
from clipswap_video.errors import CorruptWeightsError, OutputPathError
from clipswap_video.models.convert import save_converted
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.generator import AdaIN, FaceDancerGenerator
from clipswap_video.train.checkpoint import read_checkpoint, section

BACKEND_SIZE = 256
"""The crop side the `clipswap` swap backend runs (swap/clipswap.py)."""


def keras_arrays(module: nn.Module) -> list[np.ndarray]:
    """One weighted layer's arrays in the order Keras stores them."""
    if isinstance(module, AdaIN):  # gamma Dense, then beta Dense (positional)
        dense = (module.to_gamma, module.to_beta)
        return [a for layer in dense for a in keras_arrays(layer)]
    weight: torch.Tensor = module.weight.detach().float().cpu()  # type: ignore[operator]
    if isinstance(module, nn.Conv2d):
        weight = weight.permute(2, 3, 1, 0)  # OIHW -> HWIO
    elif isinstance(module, nn.Linear):
        weight = weight.t()
    arrays = [weight]
    if getattr(module, "bias", None) is not None:
        arrays.append(module.bias.detach().float().cpu())  # type: ignore[operator]
    return [np.ascontiguousarray(array.numpy()) for array in arrays]


def export_generator(
    generator: FaceDancerGenerator, path: Path, image_size: int | None = None
) -> None:
    """Writes `generator` as a converted .safetensors model.

    Args:
        generator: the trained module.
        path: the file to write (atomically).
        image_size: the graph's input side; the generator is fully convolutional,
            so a model trained on smaller crops can be declared 256 for the
            swap backend (default: the spec's own size).
    """
    if path.suffix != ".safetensors":
        raise OutputPathError(f"{path}: the exported generator must end in .safetensors")
    spec = generator.spec
    if image_size is not None:
        spec = dataclasses.replace(spec, image_size=image_size)
    config, shapes = generator_config(spec)
    # Same layers in the same order; only the mask convs' names (their level's
    # resolution) change with the declared size.
    modules = generator.keras_layers().values()
    weights = {}
    for (name, entries), module in zip(shapes.items(), modules, strict=True):
        arrays = keras_arrays(module)
        for (key, shape), array in zip(entries, arrays, strict=True):
            assert tuple(shape) == array.shape, f"{key}: {array.shape} vs {shape}"
        weights[name] = [(key, array) for (key, _), array in zip(entries, arrays, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_converted(config, weights, path, source=f"clipswap-video {__version__} training")


def export_checkpoint(checkpoint: Path, spec: GeneratorSpec, path: Path) -> None:
    """Writes the generator of a training checkpoint as a converted model, at
    the swap backend's 256 px input (see `export_generator`)."""
    tensors, _ = read_checkpoint(checkpoint)
    generator = FaceDancerGenerator(spec)
    try:
        generator.load_state_dict(section(tensors, "generator."))
    except RuntimeError as error:
        reason = (str(error).strip().splitlines() or [""])[0]
        raise CorruptWeightsError(
            f"{checkpoint} does not fit the configured model ({reason})"
        ) from None
    export_generator(generator, path, image_size=BACKEND_SIZE)


__all__ = ["BACKEND_SIZE", "export_checkpoint", "export_generator", "keras_arrays"]
