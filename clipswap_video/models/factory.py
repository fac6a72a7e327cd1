"""Building a model: the one public way to get a generator, or another network
that comes from a Keras file, ready to run.

A generator comes by name (`configs/models/<name>.toml` holds its shape as
data, open_clip's model_configs pattern) or as a GeneratorSpec, with random
weights or a weights file that must fit that shape; any Keras model
(generator, ArcFace, discriminator, attribute encoder) also comes straight from
its file, shape and weights together. Two implementations run the same weights:

- `impl="graph"`: the Keras graph interpreted layer by layer (`KerasGraph`);
  it runs every file the converter reads, so the swap backend uses it;
- `impl="modules"`: the hand-written torch modules (`FaceDancerGenerator`,
  `ArcFaceResNet50`, ...), with named submodules for training.

    model = create_model("facedancer_256")  # random weights (seed 0)
    model = create_model("facedancer_256", "weights/ClipSwap.safetensors")
    model = create_model("weights/ClipSwap.h5")  # the shape read from the file
    generator = create_model("weights/ClipSwap.h5", impl="modules")
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Literal, overload

import torch

from clipswap_video._resources import configs_dir
from clipswap_video.errors import ConfigValueError
from clipswap_video.models.convert import load_graph
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.from_keras import HandWritten, from_keras, load_into
from clipswap_video.models.generator import FaceDancerGenerator
from clipswap_video.models.keras_h5 import KerasGraph, describe
from clipswap_video.models.spec_graph import random_weights

Impl = Literal["graph", "modules"]
MODEL_FILE_SUFFIXES = (".h5", ".hdf5", ".keras", ".safetensors")
"""A `model` string ending so is a file; any other string is a config name."""


def list_models() -> list[str]:
    """Names of the model configs shipped in configs/models/."""
    return sorted(path.stem for path in (configs_dir() / "models").glob("*.toml"))


def model_spec(name: str) -> GeneratorSpec:
    """The generator hyper-parameters of configs/models/<name>.toml."""
    path = configs_dir() / "models" / f"{name}.toml"
    if not path.is_file():
        raise ConfigValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    with open(path, "rb") as file:
        values = tomllib.load(file)
    values["channels"] = tuple(values["channels"])
    values["up_types"] = tuple(values["up_types"])
    return GeneratorSpec(**values)


@overload
def create_model(
    model: str | Path | GeneratorSpec,
    weights: Path | str | None = None,
    *,
    impl: Literal["graph"] = "graph",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> KerasGraph: ...


@overload
def create_model(
    model: str | Path | GeneratorSpec,
    weights: Path | str | None = None,
    *,
    impl: Literal["modules"],
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> HandWritten: ...


def create_model(
    model: str | Path | GeneratorSpec,
    weights: Path | str | None = None,
    *,
    impl: Impl = "graph",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> KerasGraph | HandWritten:
    """The model, on `device` in `dtype`, in eval mode.

    Args:
        model: a model config name (see `list_models`), a GeneratorSpec, or a
            model file (Keras .h5 or converted .safetensors; a Path, or a string
            ending in one of MODEL_FILE_SUFFIXES).
        weights: for a name or spec, the .h5 or .safetensors whose weights fill
            it (None: random weights drawn from `seed`); a model file brings its own.
        impl: "graph" (KerasGraph) or "modules" (the hand-written torch modules).

    Raises:
        ConfigValueError: unknown name; weights of another shape; `modules` for
            a file with no hand-written module (RetinaFace).
        InputNotFoundError / CorruptWeightsError: the file.
    """
    if isinstance(model, Path) or (
        isinstance(model, str) and Path(model).suffix.lower() in MODEL_FILE_SUFFIXES
    ):
        if weights is not None:
            raise ValueError(f"{model} is a model file: it brings its own weights")
        built: KerasGraph | HandWritten = (
            load_graph(model) if impl == "graph" else from_keras(model)
        )
    elif isinstance(model, GeneratorSpec):
        built = _generator(model, "this GeneratorSpec", weights, impl, seed)
    else:
        built = _generator(model_spec(model), model, weights, impl, seed)
    return built.to(device=device, dtype=dtype).eval()


def _generator(
    spec: GeneratorSpec, label: str, weights: Path | str | None, impl: Impl, seed: int
) -> KerasGraph | HandWritten:
    config, shapes = generator_config(spec)
    if weights is None:
        graph = KerasGraph(config, random_weights(shapes, seed))
        # The same random weights in either implementation.
        return graph if impl == "graph" else load_into(FaceDancerGenerator(spec), graph)
    if impl == "modules":
        return load_into(FaceDancerGenerator(spec), weights)  # checks every layer's shape
    graph = load_graph(weights)
    expected = sum(math.prod(s) for arrays in shapes.values() for _, s in arrays)
    found = describe(graph)["parameters"]
    if found != expected:
        raise ConfigValueError(
            f"{weights} has {found:,} parameters; {label} has {expected:,}: "
            "pick the model config that matches the file"
        )
    return graph


__all__ = ["MODEL_FILE_SUFFIXES", "Impl", "create_model", "list_models", "model_spec"]
