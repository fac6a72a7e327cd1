"""The h5py-only Keras reader, its graph interpreter and the hand-written torch
modules against what TensorFlow 2.14 itself computed, without TensorFlow.

tests/data/keras_parity holds .h5 files saved by Keras (gzipped) and the Keras
outputs on fixed inputs (.npz, float32), written by `make parity`
(tools/parity_keras.py; docs/parity.md): a narrow FaceDancer generator with
every up_type and a narrow ArcFace (keras.applications ResNet blocks at 112 px).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from clipswap_video.models import ArcFaceResNet50, FaceDancerGenerator, create_model

FIXTURE = Path(__file__).parent / "data" / "keras_parity"
TOLERANCE = 1e-4
"""Max |diff| allowed; float32 rounding gives ~3e-6 here (docs/parity.md)."""

BUILDERS: dict[str, Callable[[Path], torch.nn.Module]] = {
    "interpreter": create_model,
    "hand-written": lambda path: create_model(path, impl="modules"),
}


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's .h5 files, unpacked byte for byte as Keras wrote them."""
    folder = tmp_path_factory.mktemp("keras_parity")
    for packed in FIXTURE.glob("*.h5.gz"):
        unpacked = folder / packed.name.removesuffix(".gz")
        unpacked.write_bytes(gzip.decompress(packed.read_bytes()))
    return folder


def _outputs(model: torch.nn.Module, arrays: np.lib.npyio.NpzFile) -> list[np.ndarray]:
    """The model on the fixture's inputs (arr_0, arr_1, ... in NHWC), outputs in NHWC."""
    count = sum(name.startswith("arr_") for name in arrays.files)
    inputs = [torch.from_numpy(arrays[f"arr_{index}"]) for index in range(count)]
    inputs = [x.permute(0, 3, 1, 2) if x.dim() == 4 else x for x in inputs]
    with torch.no_grad():
        result = model(*inputs)
    results = result if isinstance(result, tuple) else (result,)
    return [(y.permute(0, 2, 3, 1) if y.dim() == 4 else y).numpy() for y in results]


@pytest.mark.parametrize("how", BUILDERS)
@pytest.mark.parametrize("name", ["generator", "arcface"])
def test_matches_tensorflow(name: str, how: str, keras_files: Path) -> None:
    arrays = np.load(FIXTURE / f"{name}.npz")
    model = BUILDERS[how](keras_files / f"{name}.h5")
    outputs = _outputs(model, arrays)
    assert len(outputs) == sum(key.startswith("output_") for key in arrays.files)
    for index, got in enumerate(outputs):
        expected = arrays[f"output_{index}"]
        assert got.shape == expected.shape
        worst = float(np.abs(got - expected).max())
        assert worst <= TOLERANCE, f"{name} ({how}) output {index}: max |diff| {worst:.3g}"


def test_fixture_is_keras_own(keras_files: Path) -> None:
    """Written by Keras 2.14 itself, not by the tests' writer (keras_writer.py, which
    sets no version on model_weights and no dtype per layer), and of the shape the
    comparisons are meant to cover: every up_type, ArcFace's nested backbone."""
    for name in ("generator", "arcface"):
        with h5py.File(keras_files / f"{name}.h5", "r") as file:
            assert file["model_weights"].attrs["keras_version"] == "2.14.0"
            layers = json.loads(file.attrs["model_config"])["config"]["layers"]
            plain = [layer for layer in layers if layer["class_name"] != "Functional"]
            assert all(layer["config"]["dtype"] == "float32" for layer in plain)
    generator = create_model(keras_files / "generator.h5", impl="modules")
    assert isinstance(generator, FaceDancerGenerator)
    assert set(generator.spec.up_types) == {"affa", "d_affa", "do_affa", "add", "no_skip", "concat"}
    assert isinstance(create_model(keras_files / "arcface.h5", impl="modules"), ArcFaceResNet50)
