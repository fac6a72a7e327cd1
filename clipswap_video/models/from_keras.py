"""Filling the hand-written torch modules (generator, discriminator, attribute
encoder, ArcFace) from Keras .h5 files or their converted .safetensors.

The file is read by the graph interpreter (`convert.load_graph`), whose layers already
hold torch-layout tensors (conv kernels OIHW, Dense kernels transposed, AdaIN's
four arrays by position). `from_keras` reads the module's shape off that graph
(models/_keras_wiring.py, which refuses a graph the module would not compute);
the tensors are copied by Keras layer name into the module's `keras_layers()`.
Nothing is left to chance: every module tensor must be filled and every file
weight used, with equal shapes.

    generator = from_keras("FaceDancer_config_c_HQ.h5")  # FaceDancerGenerator, eval mode
    load_into(FaceDancerGenerator(spec), "ClipSwap.safetensors")

(`clipswap_video.models.create_model(..., impl="modules")` is the public way in;
it uses these.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import torch
from torch import nn

from clipswap_video.errors import ConfigValueError
from clipswap_video.models import _keras_ops as keras_ops
from clipswap_video.models._keras_wiring import (
    Wiring,
    arcface_from,
    attribute_encoder_from,
    discriminator_from,
    generator_from,
    some_names,
)
from clipswap_video.models.arcface import ArcFaceResNet50
from clipswap_video.models.attribute_encoder import AttributeEncoder
from clipswap_video.models.convert import load_graph
from clipswap_video.models.discriminator import Discriminator
from clipswap_video.models.generator import FaceDancerGenerator
from clipswap_video.models.keras_h5 import KerasGraph, KerasOpError, describe

Tensors = dict[str, torch.Tensor]
Source = Path | str | KerasGraph
HandWritten = FaceDancerGenerator | ArcFaceResNet50 | Discriminator | AttributeEncoder


class KerasLayered(Protocol):
    """A module that names its weighted submodules as the Keras model did."""

    def keras_layers(self) -> dict[str, nn.Module]: ...


ModuleT = TypeVar("ModuleT", bound=KerasLayered)


def load_into(module: ModuleT, source: Source) -> ModuleT:
    """Copies the weights of `source` (.h5, converted .safetensors or a loaded
    KerasGraph) into `module`, by Keras layer name.

    Raises:
        ConfigValueError: a module layer the file lacks, a file layer the module
            lacks, or a shape that differs; the layers are named.
    """
    graph = source if isinstance(source, KerasGraph) else load_graph(source)
    targets = {name: _tensors(layer) for name, layer in module.keras_layers().items()}
    weights = {name: _torch_layout(op) for name, op in _weighted_ops(graph)}
    problems = _problems(targets, weights)
    if problems:
        label = f"Keras model {graph.name!r}" if isinstance(source, KerasGraph) else str(source)
        raise ConfigValueError(
            f"{label} does not fit {type(module).__name__}: {'; '.join(problems)}"
        )
    with torch.no_grad():
        for name, tensors in targets.items():
            for key, tensor in tensors.items():
                tensor.copy_(weights[name][key])
    return module


def from_keras(path: Path | str) -> HandWritten:
    """The hand-written module for the Keras model at `path`, its shape read from
    the graph, its weights loaded, in eval mode.

    Raises:
        ConfigValueError: a kind of model with no hand-written module (RetinaFace),
            or a graph that differs from what the module builds.
    """
    try:
        graph = load_graph(path)
    except KerasOpError as error:
        raise ConfigValueError(f"{path}: no hand-written torch module for it ({error})") from None
    kind = model_kind(graph)
    builders: dict[str, Callable[[Wiring], HandWritten]] = {
        "generator": generator_from,
        "identity (ArcFace)": arcface_from,
        "discriminator": discriminator_from,
        "attribute encoder": attribute_encoder_from,
    }
    if kind not in builders:
        raise ConfigValueError(
            f"{path}: no hand-written torch module for a model of kind {kind!r}; "
            "the graph interpreter runs it (create_model with impl='graph')"
        )
    try:
        module = builders[kind](Wiring(graph))
    except ConfigValueError as error:
        raise ConfigValueError(f"{path}: {error}") from None
    return load_into(module, graph).eval()


def model_kind(graph: KerasGraph) -> str:
    """generator, identity (ArcFace), discriminator, attribute encoder, detector
    (RetinaFace, as `describe` says) or unrecognised."""
    kind = str(describe(graph)["kind"])
    if not kind.startswith("other"):
        return kind
    classes = {layer["class_name"] for layer in graph.layer_specs}
    if "LayerNormalization" in classes and "TFOpLambda" in classes:
        return "attribute encoder"
    if "Reshape" in classes and len(graph.output_refs) == 1:
        return "discriminator"
    return "unrecognised"


# Weights ---------------------------------------------------------------------------


def _weighted_ops(graph: KerasGraph) -> list[tuple[str, nn.Module]]:
    """(Keras layer name, interpreter module) of every layer with weights; a nested
    model's layers (ArcFace's ResNet) under their own names."""
    found: list[tuple[str, nn.Module]] = []
    for layer, op in zip(graph.layer_specs, graph.ops.values(), strict=True):
        if isinstance(op, KerasGraph):
            found.extend(_weighted_ops(op))
        elif _tensors(op):
            found.append((layer["name"], op))
    return found


def _torch_layout(op: nn.Module) -> Tensors:
    """An interpreter layer's tensors under the names torch's own layers use."""
    if isinstance(op, keras_ops.AdaIN):
        return {
            "to_gamma.weight": op.gamma_weight,
            "to_gamma.bias": op.gamma_bias,
            "to_beta.weight": op.beta_weight,
            "to_beta.bias": op.beta_bias,
        }
    if isinstance(op, keras_ops.Normalization):
        named = {
            "weight": op.gamma,
            "bias": op.beta,
            "running_mean": op.moving_mean,
            "running_var": op.moving_variance,
        }
        return {key: value for key, value in named.items() if value is not None}
    return _tensors(op)  # Conv2D, Dense: weight, bias


def _tensors(module: nn.Module) -> Tensors:
    """Parameters and buffers, without BatchNorm's step counter (Keras has none)."""
    named = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    return {key: value for key, value in named.items() if not key.endswith("num_batches_tracked")}


def _problems(targets: dict[str, Tensors], weights: dict[str, Tensors]) -> list[str]:
    missing = [name for name in targets if name not in weights]
    unused = [name for name in weights if name not in targets]
    mismatched = []
    for name in (name for name in targets if name in weights):
        ours, theirs = targets[name], weights[name]
        for key in [*ours, *(key for key in theirs if key not in ours)]:
            here = tuple(ours[key].shape) if key in ours else None
            there = tuple(theirs[key].shape) if key in theirs else None
            if here != there:
                mismatched.append(f"{name}.{key} {there} in the file, {here} here")
                break
    found = {
        "missing in the file": missing,
        "unused in the file": unused,
        "shape mismatch": mismatched,
    }
    return [f"{what}: {some_names(names)}" for what, names in found.items() if names]


__all__ = ["HandWritten", "KerasLayered", "from_keras", "load_into", "model_kind"]
