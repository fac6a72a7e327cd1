"""A hand-written module's shape read off a Keras graph, for `from_keras`: who
feeds whom, the generator's `GeneratorSpec` (reference 1.6), the discriminator's
and attribute encoder's widths, ArcFace's stages and head (reference 2.1).

The generator, discriminator and attribute encoder readers write their spec's
own graph and refuse a file whose layers or wiring differ from it; the ArcFace
reader refuses a head other than the one the module builds. A module is never
filled from a graph it does not compute.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from clipswap_video.errors import ConfigValueError
from clipswap_video.models.arcface import ArcFaceResNet50
from clipswap_video.models.attribute_encoder import AttributeEncoder
from clipswap_video.models.discriminator import Discriminator
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.generator import FaceDancerGenerator
from clipswap_video.models.keras_h5 import KerasGraph
from clipswap_video.models.training_specs import attribute_encoder_config, discriminator_config


def some_names(items: list[str], shown: int = 6) -> str:
    """The first `shown` of `items`, comma-separated, and how many more there are."""
    more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


class Wiring:
    """Who feeds whom in a Keras graph, to read a model's hyper-parameters off it."""

    def __init__(self, graph: KerasGraph) -> None:
        self.graph = graph
        self.layers = {layer["name"]: layer for layer in graph.layer_specs}
        self.consumers: dict[str, list[str]] = {}
        for layer in graph.layer_specs:
            for source in _sources(layer):
                self.consumers.setdefault(source, []).append(layer["name"])

    def cls(self, name: str) -> str:
        layer = self.layers.get(name)
        return layer["class_name"] if layer else "InputLayer"

    def config(self, name: str) -> dict[str, Any]:
        return dict(self.layers[name]["config"])

    def inputs(self, name: str) -> list[str]:
        return _sources(self.layers[name])

    def next(self, name: str) -> str:
        """The only consumer of `name` (a chain inside a block)."""
        consumers = self.consumers.get(name, [])
        if len(consumers) != 1:
            raise ConfigValueError(f"layer {name!r} feeds {len(consumers)} layers, expected one")
        return consumers[0]

    def of_class(self, cls: str) -> list[str]:
        return [name for name in self.layers if self.cls(name) == cls]

    def input_shape(self, index: int) -> list[Any]:
        return list(self.graph.input_shapes[self.graph.input_names[index]] or [])

    def check(self, expected: dict[str, Any], kind: str) -> None:
        """Refuses a graph whose layers or wiring differ from `expected` (a config)."""
        ours = _signatures(expected["config"]["layers"])
        theirs = _signatures(self.graph.layer_specs)
        differing = sorted(
            name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name)
        )
        if differing:
            raise ConfigValueError(
                f"the {kind} graph differs from the hand-written module at layers "
                f"{some_names(differing)}; run it with create_model(path, impl='graph') instead"
            )


def _sources(layer: dict[str, Any]) -> list[str]:
    """The names of the layers a Keras layer reads (keyword tensors of a TFOpLambda too)."""
    if not layer["inbound_nodes"]:
        return []
    node = layer["inbound_nodes"][0]
    if layer["class_name"] in ("TFOpLambda", "SlicingOpLambda"):
        kwargs = node[3] or {}
        refs = [ref[0] for ref in kwargs.values() if isinstance(ref, list) and len(ref) == 3]
        return [node[0], *[ref for ref in refs if isinstance(ref, str)]]
    return [entry[0] for entry in node]


_SEMANTIC_KEYS = ("activation", "alpha", "epsilon", "strides", "padding", "interpolation")


def _signatures(layers: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Per layer: class, inputs and the options that change the maths (floats
    rounded, as files store 0.2 as 0.20000000298023224)."""

    def value(item: Any) -> Any:
        return round(item, 6) if isinstance(item, float) else item

    return {
        layer["name"]: (
            layer["class_name"].removeprefix("Addons>"),
            tuple(_sources(layer)),
            *(value(layer["config"].get(key)) for key in _SEMANTIC_KEYS),
        )
        for layer in layers
        if layer["class_name"] != "InputLayer"
    }


def generator_from(wiring: Wiring) -> FaceDancerGenerator:
    """Sizes from the inputs, the mapping from the Dense chain before the AdaINs,
    channels from each ResUp's conv, up_types from what enters each ResUp (reference 1.6)."""
    adains = wiring.of_class("AdaIN")
    if len(adains) != 7:
        raise ConfigValueError(f"the generator has {len(adains)} AdaIN layers, expected 7")
    depth, size = _mapping(wiring, wiring.inputs(adains[0])[1])
    convs = [wiring.next(wiring.next(adain)) for adain in adains]  # AdaIN -> LReLU -> conv
    widths = [int(wiring.config(conv)["filters"]) for conv in convs]
    up_types = []
    for previous, adain in pairwise(adains):
        entering = wiring.inputs(wiring.inputs(adain)[0])[0]  # the input of the IN
        up_types.append(_up_type(wiring, entering, _block_output(wiring, previous)))
    spec = GeneratorSpec(
        image_size=int(wiring.input_shape(0)[1]),
        z_dim=int(wiring.input_shape(1)[1]),
        channels=tuple(reversed(widths[:6])),
        mapping_depth=depth,
        mapping_size=size or GeneratorSpec.mapping_size,
        up_types=tuple(up_types),
    )
    wiring.check(generator_config(spec)[0], "generator")
    return FaceDancerGenerator(spec)


def _mapping(wiring: Wiring, style: str) -> tuple[int, int | None]:
    """Depth and width of the Dense chain that ends in `style` (w)."""
    depth, size, name = 0, None, style
    while wiring.cls(name) in ("Dense", "LeakyReLU"):
        if wiring.cls(name) == "Dense":
            depth += 1
            size = size or int(wiring.config(name)["units"])
        name = wiring.inputs(name)[0]
    return depth, size


def _block_output(wiring: Wiring, adain: str) -> str:
    """The Add that ends the ResUp of `adain`: AdaIN -> LReLU -> conv -> [up] -> Add."""
    name = adain
    while wiring.cls(name) != "Add":
        name = wiring.next(name)
    return name


def _up_type(wiring: Wiring, entering: str, previous: str) -> str:
    if entering == previous:
        return "no_skip"
    kinds = {"Concatenate": "concat", "Add": "add"}
    if wiring.cls(entering) in kinds:
        return kinds[wiring.cls(entering)]
    if wiring.cls(entering) != "AdaptiveAttention":
        raise ConfigValueError(f"unknown decoder merge at layer {entering!r}")
    mask, _, decoded = wiring.inputs(entering)
    if wiring.cls(mask) == "TFOpLambda":
        return "do_affa"
    return "d_affa" if wiring.cls(decoded) == "AdaptiveAttention" else "affa"


def _stem_filters(wiring: Wiring) -> int:
    image = wiring.graph.input_names[0]
    return int(wiring.config(wiring.consumers[image][0])["filters"])


def discriminator_from(wiring: Wiring) -> Discriminator:
    """Block widths from the main-path conv that ends each block's Add."""
    channels = tuple(
        int(wiring.config(wiring.inputs(add)[0])["filters"]) for add in wiring.of_class("Add")
    )
    image_size, first = int(wiring.input_shape(0)[1]), _stem_filters(wiring)
    wiring.check(discriminator_config(image_size, first, channels)[0], "discriminator")
    return Discriminator(image_size=image_size, first=first, channels=channels)


def attribute_encoder_from(wiring: Wiring) -> AttributeEncoder:
    """Per block (an output, Add -> multiply): its residual conv's width, and whether
    a pooling sits before the residual's second norm."""
    plan = []
    for output, _ in wiring.graph.output_refs[1:]:
        residual = wiring.inputs(wiring.inputs(output)[0])[1]
        norm = wiring.inputs(wiring.inputs(residual)[0])[0]  # conv <- LReLU <- LayerNorm
        down = wiring.cls(wiring.inputs(norm)[0]) == "AveragePooling2D"
        plan.append((int(wiring.config(residual)["filters"]), down))
    args: dict[str, Any] = {
        "image_size": int(wiring.input_shape(0)[1]),
        "first": _stem_filters(wiring),
        "channels": tuple(width for width, down in plan if down),
        "extra_blocks": sum(not down for _, down in plan),
    }
    wiring.check(attribute_encoder_config(**args)[0], "attribute encoder")
    return AttributeEncoder(**args)


_ARCFACE_HEAD = ["BatchNormalization", "Dropout", "Flatten", "Dense", "BatchNormalization"]


def arcface_from(wiring: Wiring) -> ArcFaceResNet50:
    """Stages from the keras.applications names inside the backbone; the head must
    be BN -> Dropout -> Flatten -> Dense -> BN (reference 2.1)."""
    nested = wiring.of_class("Functional") + wiring.of_class("Model")
    if len(nested) != 1:
        raise ConfigValueError(f"the ArcFace graph nests {len(nested)} models, expected one")
    inner = {layer["name"]: layer for layer in wiring.layers[nested[0]]["config"]["layers"]}
    stages = range(2, 6)
    blocks = [
        sum(name.startswith(f"conv{s}_block") and name.endswith("_out") for name in inner)
        for s in stages
    ]
    widths = [
        int(inner.get(f"conv{s}_block1_1_conv", {"config": {"filters": 0}})["config"]["filters"])
        for s in stages
    ]
    head, name = [], nested[0]
    while name in wiring.consumers:
        name = wiring.next(name)
        head.append(name)
    classes = [wiring.cls(name) for name in head]
    if classes != _ARCFACE_HEAD or not all(blocks) or not all(widths):
        raise ConfigValueError(
            f"the ArcFace head is {' -> '.join(classes) or 'empty'}; the hand-written module "
            f"builds {' -> '.join(_ARCFACE_HEAD)} on a keras.applications ResNet50"
        )
    norm, dropout, _, dense, embedding_norm = head
    if not math.isclose(wiring.config(norm)["epsilon"], wiring.config(embedding_norm)["epsilon"]):
        raise ConfigValueError("the ArcFace head's two BatchNormalization epsilons differ")
    return ArcFaceResNet50(
        blocks=blocks,
        widths=widths,
        image_size=int(wiring.input_shape(0)[1]),
        embedding_dim=int(wiring.config(dense)["units"]),
        dropout=float(wiring.config(dropout).get("rate", 0.0)),
        head_eps=float(wiring.config(norm)["epsilon"]),
        head_names=(norm, dense, embedding_norm),
    )


__all__ = [
    "Wiring",
    "arcface_from",
    "attribute_encoder_from",
    "discriminator_from",
    "generator_from",
    "some_names",
]
