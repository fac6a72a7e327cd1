"""The hand-written torch modules (generator, discriminator, attribute encoder,
ArcFace) against the .h5 graph interpreter, on narrow graphs written in the real
Keras layout; full-size parameter counts against the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from keras_writer import arcface_graph, functional, input_layer, layer, node, write_keras_h5

from clipswap_video.errors import ConfigValueError
from clipswap_video.models import convert, create_model
from clipswap_video.models.arcface import ArcFaceResNet50
from clipswap_video.models.attribute_encoder import AttributeEncoder
from clipswap_video.models.discriminator import Discriminator
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.from_keras import load_into
from clipswap_video.models.generator import FaceDancerGenerator
from clipswap_video.models.keras_h5 import KerasGraph
from clipswap_video.models.spec_graph import random_weights
from clipswap_video.models.training_specs import attribute_encoder_config, discriminator_config

MIXED = ("affa", "d_affa", "do_affa", "add", "no_skip", "concat")


def _narrow_spec(up_types: tuple[str, ...], mapping_depth: int = 2) -> GeneratorSpec:
    """Narrow widths; without a mapping (depth 0) the mapping size is unused: the default."""
    size = 6 if mapping_depth else GeneratorSpec.mapping_size
    return GeneratorSpec(
        image_size=64,
        z_dim=8,
        channels=(4, 8, 8, 8, 8, 8),
        mapping_depth=mapping_depth,
        mapping_size=size,
        up_types=up_types,
    )


def _write(path: Path, graph: tuple[dict[str, Any], dict[str, list[Any]]], seed: int = 1) -> Path:
    config, shapes = graph
    return write_keras_h5(path, config, random_weights(shapes, seed), chunks=2)


def _max_diff(module: torch.nn.Module, path: Path, *inputs: torch.Tensor) -> float:
    """max |module - interpreter| over every output, in float64: float32 rounding
    alone reaches 1.5e-5 on the narrow generators' outputs of magnitude 10, while
    a layout or epsilon mistake shows at any precision."""
    interpreter = create_model(path).double()
    with torch.no_grad():
        ours, theirs = module.double()(*inputs), interpreter(*inputs)
    pairs = zip(ours, theirs, strict=True) if isinstance(ours, tuple) else [(ours, theirs)]
    return max(float((a - b).abs().max()) for a, b in pairs)


def _uniform(*shape: int, low: float = -1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sum(shape))
    return torch.rand(*shape, generator=generator, dtype=torch.float64) * (1 - low) + low


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("up_types", "mapping_depth"),
    [
        (("no_skip", "no_skip", "affa", "affa", "affa", "concat"), 2),
        (MIXED, 2),
        (("add", "affa", "concat", "no_skip", "add", "affa"), 0),  # unnamed attention at `final`
    ],
)
def test_generator_matches_the_interpreter(
    tmp_path: Path, up_types: tuple[str, ...], mapping_depth: int
) -> None:
    spec = _narrow_spec(up_types, mapping_depth)
    path = _write(tmp_path / "g.h5", generator_config(spec))
    generator = create_model(path, impl="modules")
    assert isinstance(generator, FaceDancerGenerator) and generator.spec == spec
    assert not generator.training
    assert _max_diff(generator, path, _uniform(2, 3, 64, 64), _uniform(2, 8) * 3) <= 1e-5


def test_discriminator_matches_the_interpreter(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.h5", discriminator_config(64, 4, (6, 8, 8, 8)))
    critic = create_model(path, impl="modules")
    assert isinstance(critic, Discriminator) and critic.channels == (6, 8, 8, 8)
    assert _max_diff(critic, path, _uniform(3, 3, 64, 64)) <= 1e-5


def test_attribute_encoder_matches_the_interpreter(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.h5", attribute_encoder_config(32, 4, (6, 8), extra_blocks=2))
    encoder = create_model(path, impl="modules")
    assert isinstance(encoder, AttributeEncoder) and encoder.extra_blocks == 2
    assert len(encoder(torch.rand(1, 3, 32, 32))) == 5
    assert _max_diff(encoder, path, _uniform(2, 3, 32, 32)) <= 1e-5


def test_arcface_matches_the_interpreter(tmp_path: Path) -> None:
    config, weights = arcface_graph(np.random.default_rng(2), blocks=(1, 2, 1, 1))
    path = write_keras_h5(tmp_path / "a.h5", config, weights)
    arcface = create_model(path, impl="modules")
    assert isinstance(arcface, ArcFaceResNet50)
    assert arcface(torch.rand(1, 3, 112, 112)).shape == (1, 16)
    assert _max_diff(arcface, path, _uniform(2, 3, 112, 112, low=0.0)) <= 1e-5


def test_arcface_head_other_than_the_candidate_is_refused(tmp_path: Path) -> None:
    config, weights = arcface_graph(np.random.default_rng(3))
    config["config"]["layers"].append(
        layer("Activation", "embedding", node("batch_normalization_1"), activation="tanh")
    )
    config["config"]["output_layers"] = [["embedding", 0, 0]]
    path = write_keras_h5(tmp_path / "a.h5", config, weights)
    with pytest.raises(ConfigValueError, match=r"a\.h5: the ArcFace head is .* -> Activation;"):
        create_model(path, impl="modules")


def test_full_size_parameter_counts() -> None:
    specs = [GeneratorSpec(), GeneratorSpec(mapping_size=512), GeneratorSpec(up_types=MIXED)]
    with torch.device("meta"):  # shapes only: no memory, no init time
        generators = [FaceDancerGenerator(spec) for spec in specs]
        others = [Discriminator(), AttributeEncoder()]
        arcface = ArcFaceResNet50()
    assert [_parameters(g) for g in generators] == [22_473_254, 24_505_894, 34_279_047]
    assert [_parameters(m) for m in others] == [23_972_353, 21_386_048]
    # Keras' trainable count of ResNet50 (its 53,120 BN statistics are buffers here),
    # plus BN(2048) + Dense(4*4*2048 -> 512) + BN(512).
    assert _parameters(arcface.backbone) == 23_534_592
    assert _parameters(arcface) == 40_317_440


def test_topology_mismatch_names_the_layers(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.h5", generator_config(_narrow_spec(MIXED)))
    other = FaceDancerGenerator(_narrow_spec(("no_skip",) * 5 + ("concat",)))
    expected = r"g\.h5 does not fit FaceDancerGenerator: unused in the file: .*8x8_0.*; shape "
    with pytest.raises(ConfigValueError, match=expected + r"mismatch: conv2d_15\.") as error:
        load_into(other, path)
    assert "\n" not in str(error.value)
    narrow = Discriminator(image_size=64, first=4, channels=(6, 8, 8, 6))
    with pytest.raises(
        ConfigValueError,
        match=r"shape mismatch: conv2d_10\.weight \(8, 8, 1, 1\) in the file, \(6, 8, 1, 1\) here",
    ):
        load_into(narrow, _write(tmp_path / "d.h5", discriminator_config(64, 4, (6, 8, 8, 8))))


def test_wiring_that_differs_from_the_module_is_refused(tmp_path: Path) -> None:
    config, shapes = generator_config(_narrow_spec(MIXED))
    for entry in config["config"]["layers"]:
        if entry["name"] == "leaky_re_lu_3":
            entry["config"]["alpha"] = 0.3
    path = write_keras_h5(tmp_path / "g.h5", config, random_weights(shapes))
    with pytest.raises(
        ConfigValueError, match="differs from the hand-written module at layers leaky_re_lu_3"
    ):
        create_model(path, impl="modules")


def test_models_without_a_hand_written_module_are_refused(tmp_path: Path) -> None:
    layers = [
        input_layer("input_1", [None, 8, 8, 3]),
        layer("Activation", "relu", node("input_1"), activation="relu"),
    ]
    path = write_keras_h5(tmp_path / "o.h5", functional("other", layers, ["input_1"], ["relu"]), {})
    with pytest.raises(ConfigValueError, match="module for a model of kind 'unrecognised'"):
        create_model(path, impl="modules")


def test_converted_safetensors_loads_the_same(tmp_path: Path) -> None:
    source = _write(tmp_path / "g.h5", generator_config(_narrow_spec(MIXED)))
    target = tmp_path / "g.safetensors"
    convert(source, target)
    from_h5, from_converted = (
        create_model(source, impl="modules"),
        create_model(target, impl="modules"),
    )
    into = load_into(FaceDancerGenerator(_narrow_spec(MIXED)), target).eval()
    target_image, z = torch.rand(1, 3, 64, 64) * 2 - 1, torch.randn(1, 8)
    with torch.no_grad():
        expected = from_h5(target_image, z)
        assert torch.equal(from_converted(target_image, z), expected)
        assert torch.equal(into(target_image, z), expected)


def test_create_model_builds_one_generator_in_either_implementation(tmp_path: Path) -> None:
    """From a spec, with random weights drawn from the seed or with a weights file,
    the graph and the hand-written modules compute the same function."""
    spec = _narrow_spec(MIXED)
    graph = create_model(spec, seed=4, dtype=torch.float64)
    modules = create_model(spec, impl="modules", seed=4, dtype=torch.float64)
    assert isinstance(graph, KerasGraph) and isinstance(modules, FaceDancerGenerator)
    assert not graph.training and not modules.training
    image, z = _uniform(2, 3, 64, 64), _uniform(2, 8) * 3
    with torch.no_grad():
        assert float((graph(image, z) - modules(image, z)).abs().max()) <= 1e-5
        other_seed = create_model(spec, seed=5, dtype=torch.float64)(image, z)
        assert not torch.equal(other_seed, graph(image, z))
    path = _write(tmp_path / "g.h5", generator_config(spec))
    assert _max_diff(create_model(spec, path, impl="modules"), path, image, z) <= 1e-5
    narrower = _narrow_spec(("no_skip",) * 5 + ("concat",))
    with pytest.raises(ConfigValueError, match="does not fit FaceDancerGenerator"):
        create_model(narrower, path, impl="modules")
    with pytest.raises(ConfigValueError, match="parameters; this GeneratorSpec has"):
        create_model(narrower, path)
    with pytest.raises(ValueError, match="brings its own weights"):
        create_model(path, path)
