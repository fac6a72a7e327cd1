"""Generators by name: `configs/models/<name>.toml` holds the shape as data
(open_clip's model_configs pattern), `create_model` builds it.

    model = create_model("facedancer_256", weights="weights/ClipSwap.safetensors")
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import torch

from clipswap_video._resources import configs_dir
from clipswap_video.errors import ConfigValueError
from clipswap_video.models.convert import load
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config, random_weights
from clipswap_video.models.keras_h5 import KerasGraph, describe


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


def create_model(
    name: str,
    weights: Path | str | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> KerasGraph:
    """The generator `name`, with `weights` (.safetensors or .h5) or random ones.

    Raises:
        ConfigValueError: unknown name, or weights whose graph has another shape.
    """
    spec = model_spec(name)
    config, shapes = generator_config(spec)
    if weights is None:
        model = KerasGraph(config, random_weights(shapes, seed))
    else:
        model = load(weights)
        expected = sum(math.prod(s) for arrays in shapes.values() for _, s in arrays)
        found = describe(model)["parameters"]
        if found != expected:
            raise ConfigValueError(
                f"{weights} has {found:,} parameters; {name} has {expected:,}: "
                "pick the model config that matches the file"
            )
    return model.to(device=device, dtype=dtype).eval()


__all__ = ["create_model", "list_models", "model_spec"]
