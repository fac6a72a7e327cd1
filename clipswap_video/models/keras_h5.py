"""Keras 2 `.h5` models in PyTorch, read with h5py alone (no TensorFlow).

The file's `model_config` graph is interpreted node by node: one torch module
per Keras layer (clipswap_video.models._keras_ops), weights matched by name in
the `weight_names` order Keras wrote (AdaIN's two Dense layers by position),
nested Functional models (ArcFace's ResNet) as sub-graphs referenced at node 1,
and TFOpLambda nodes whose keyword tensors are resolved. Layout and pitfalls:
docs/models.md, section 5.

    model = load_h5_graph("FaceDancer_config_c_HQ.h5")   # eval mode
    swapped = model(target_nchw, z)                      # Keras input order, NCHW images

(`clipswap_video.models.create_model` is the public way in; it uses this.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clipswap_video.errors import CorruptWeightsError, InputNotFoundError
from clipswap_video.models._keras_layers import build_layer
from clipswap_video.models._keras_ops import KerasOpError, Weights

LayerWeights = dict[str, list[tuple[str, np.ndarray]]]
"""Layer name -> (full weight name, array), in `weight_names` order."""


@dataclass(frozen=True)
class KerasFile:
    """What an .h5 holds: the graph config and the weights of every layer."""

    config: dict[str, Any]
    weights: LayerWeights
    keras_version: str


def read_keras_h5(path: Path, config_json: Path | None = None) -> KerasFile:
    """Reads a Keras full-model .h5 (or a weights-only .h5 plus its JSON config)."""
    import h5py

    if not path.is_file():
        raise InputNotFoundError(f"model file {path} does not exist")
    try:
        with h5py.File(path, "r") as file:
            root = file["model_weights"] if "model_weights" in file else file
            config = _config(file, path, config_json)
            weights = {name: _layer_weights(root[name]) for name in _chunked(root, "layer_names")}
            version = _text(file.attrs.get("keras_version", root.attrs.get("keras_version", "")))
    except OSError as error:
        raise CorruptWeightsError(f"{path} is not a readable HDF5 file ({error})") from None
    return KerasFile(config, weights, version)


class KerasGraph(nn.Module):
    """A Keras functional graph evaluated in torch (NCHW images, (N, D) vectors)."""

    def __init__(self, config: dict[str, Any], weights: LayerWeights) -> None:
        super().__init__()
        if config.get("class_name") not in ("Functional", "Model"):
            raise KerasOpError(
                f"only functional models are supported, not {config.get('class_name')}"
            )
        body = config["config"]
        self.name = body.get("name", "model")
        self.layer_specs = [
            layer for layer in body["layers"] if layer["class_name"] != "InputLayer"
        ]
        self.input_names = [entry[0] for entry in body["input_layers"]]
        self.input_shapes = {
            layer["name"]: layer["config"].get("batch_input_shape")
            for layer in body["layers"]
            if layer["class_name"] == "InputLayer"
        }
        self.output_refs = [(entry[0], entry[2]) for entry in body["output_layers"]]
        self.ops = nn.ModuleDict()
        for layer in self.layer_specs:
            self.ops[_key(layer["name"])] = self._build(layer, weights)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.name} takes {len(self.input_names)} inputs, got {len(inputs)}")
        values = {(name, 0): tensor for name, tensor in zip(self.input_names, inputs, strict=True)}
        for layer in self.layer_specs:
            args, kwargs = _node_inputs(layer, values)
            op = self.ops[_key(layer["name"])]
            result = op(*args) if isinstance(op, KerasGraph) else op(args, **kwargs)
            results = result if isinstance(result, tuple) else (result,)
            for index, tensor in enumerate(results):
                values[(layer["name"], index)] = tensor
        outputs = tuple(values[ref] for ref in self.output_refs)
        return outputs[0] if len(outputs) == 1 else outputs

    def _build(self, layer: dict[str, Any], weights: LayerWeights) -> nn.Module:
        own = weights.get(layer["name"], [])
        if layer["class_name"] in ("Functional", "Model"):
            return KerasGraph(layer, _group_nested(layer, own))
        if len(layer["inbound_nodes"]) > 1:
            raise KerasOpError(f"layer {layer['name']!r} is shared (called twice): not supported")
        leaves = [(_leaf_name(name), array) for name, array in own]
        call = _flat_kwargs(layer)
        return build_layer(layer["class_name"], layer["name"], layer["config"], leaves, call)


def load_h5_graph(path: Path | str, config_json: Path | None = None) -> KerasGraph:
    """The Keras model in the .h5 at `path` as a KerasGraph in eval mode.

    Raises:
        InputNotFoundError / CorruptWeightsError: the file.
        KerasOpError: a layer class or option the interpreter does not support
            (named in the message), e.g. a `Lambda` with Python bytecode.
    """
    keras = read_keras_h5(Path(path), config_json)
    return KerasGraph(keras.config, keras.weights).eval()


def describe(model: KerasGraph) -> dict[str, Any]:
    """Kind, input shapes, layer census and parameter count of a loaded model."""
    census: dict[str, int] = {}
    for layer in model.layer_specs:
        census[layer["class_name"]] = census.get(layer["class_name"], 0) + 1
    shapes = [model.input_shapes.get(name) for name in model.input_names]
    dense = [layer for layer in model.layer_specs if layer["class_name"] == "Dense"]
    return {
        "name": model.name,
        "kind": _kind(census, shapes),
        # FaceDancer's mapping network: the Dense chain from z to every AdaIN.
        "mapping": {"depth": len(dense), "size": dense[-1]["config"]["units"]} if dense else None,
        "attention_levels": sorted(
            layer["name"]
            for layer in model.layer_specs
            if layer["class_name"] == "Conv2D"
            and "x" in layer["name"].split("_")[0]
            and layer["name"].split("_")[0].replace("x", "").isdigit()
        ),
        "inputs": shapes,
        "layers": census,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _kind(census: dict[str, int], shapes: list[Any]) -> str:
    if "AdaIN" in census:
        return "generator"
    if len(shapes) == 1 and shapes[0] and len(shapes[0]) == 4 and shapes[0][1] == 112:
        return "identity (ArcFace)"
    if "FPN" in census or "SSH" in census:
        return "detector (RetinaFace)"
    return "other (e.g. discriminator)"


def _flat_kwargs(layer: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a TFOpLambda's flat node (see _node_inputs); {} otherwise."""
    if layer["class_name"] != "TFOpLambda" or not layer["inbound_nodes"]:
        return {}
    node = layer["inbound_nodes"][0]
    return dict(node[3] or {}) if len(node) == 4 else {}


def _node_inputs(
    layer: dict[str, Any], values: dict[tuple[str, int], torch.Tensor]
) -> tuple[list[torch.Tensor], dict[str, Any]]:
    node = layer["inbound_nodes"][0]
    if layer["class_name"] in ("TFOpLambda", "SlicingOpLambda"):
        # A flat node: [source, node_index, tensor_index, kwargs]; kwargs may hold
        # tensor references as [layer, node, tensor].
        source, _, tensor, kwargs = node
        keyword: dict[str, Any] = {}
        for key, ref in (kwargs or {}).items():
            if key == "name":
                continue
            is_tensor = isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str)
            keyword[key] = values[(ref[0], ref[2])] if is_tensor else ref
        return [values[(source, tensor)]], keyword
    # Keyed by (layer, tensor index): a nested model is referenced at node 1.
    return [values[(entry[0], entry[2])] for entry in node], {}


def _group_nested(layer: dict[str, Any], own: list[tuple[str, np.ndarray]]) -> LayerWeights:
    """A nested model's arrays, grouped by the sub-layer their name belongs to."""
    names = {sub["name"] for sub in layer["config"]["layers"]}
    grouped: LayerWeights = {}
    for full_name, array in own:
        parts = full_name.split("/")
        owner = next((part for part in parts if part in names), None)
        if owner is None:
            raise KerasOpError(f"weight {full_name!r} of {layer['name']!r} matches no sub-layer")
        grouped.setdefault(owner, []).append((full_name, array))
    return grouped


def _leaf_name(full_name: str) -> str:
    return full_name.split("/")[-1].split(":")[0]


def _key(name: str) -> str:
    return name.replace(".", "__")


def _config(file: Any, path: Path, config_json: Path | None) -> dict[str, Any]:
    if config_json is not None:
        return dict(json.loads(config_json.read_text()))
    raw = file.attrs.get("model_config")
    if raw is None:
        raise CorruptWeightsError(
            f"{path} holds weights only (no model_config); pass the model's JSON config too"
        )
    return dict(json.loads(_text(raw)))


def _chunked(group: Any, name: str) -> list[str]:
    """An attribute Keras may split into name0, name1, ... when it exceeds 64 KB."""
    if name in group.attrs:
        return [_text(item) for item in group.attrs[name]]
    items: list[str] = []
    index = 0
    while f"{name}{index}" in group.attrs:
        items.extend(_text(item) for item in group.attrs[f"{name}{index}"])
        index += 1
    return items


def _layer_weights(group: Any) -> list[tuple[str, np.ndarray]]:
    return [(name, np.asarray(group[name][()])) for name in _chunked(group, "weight_names")]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


__all__ = [
    "KerasFile",
    "KerasGraph",
    "KerasOpError",
    "Weights",
    "describe",
    "load_h5_graph",
    "read_keras_h5",
]
