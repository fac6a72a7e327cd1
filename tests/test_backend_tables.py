"""The name -> "module:Class" tables of the face detectors and swap backends:
the same names as the config's Literals, classes that fit their interface, and
nothing heavy imported to list them."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from typing import Any, get_args

import pytest

from clipswap_video.config_sections import DetectorName, SwapBackendName
from clipswap_video.errors import ConfigValueError
from clipswap_video.faces.backends import DETECTORS
from clipswap_video.faces.detect import FaceDetector
from clipswap_video.swap.backend import SwapBackend
from clipswap_video.swap.backends import SWAP_BACKENDS, create_backend
from clipswap_video.swap.choice import resolve_swapper

TABLES = [(DETECTORS, DetectorName, FaceDetector), (SWAP_BACKENDS, SwapBackendName, SwapBackend)]


ENTRIES = [
    (name, entry, interface) for table, _, interface in TABLES for name, entry in table.items()
]


@pytest.mark.parametrize(
    ("table", "literal"),
    [(table, literal) for table, literal, _ in TABLES],
    ids=["detectors", "swap backends"],
)
def test_table_names_are_the_config_names(table: dict[str, str], literal: Any) -> None:
    assert set(table) == set(get_args(literal))


@pytest.mark.parametrize(("name", "entry", "interface"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_every_entry_is_a_class_that_fits_its_interface(
    name: str, entry: str, interface: type
) -> None:
    module, _, class_name = entry.partition(":")
    backend = getattr(importlib.import_module(module), class_name)
    assert inspect.isclass(backend)
    assert backend.name == name
    methods = [
        key
        for key, value in vars(interface).items()
        if inspect.isfunction(value) and not key.startswith("_")
    ]
    for method in methods:
        expected = inspect.signature(getattr(interface, method))
        assert inspect.signature(getattr(backend, method)) == expected, method
    # Attributes: set on the class, or by the constructor.
    constructor = inspect.getsource(backend.__init__)
    for attribute in interface.__annotations__:
        assert hasattr(backend, attribute) or f"self.{attribute} = " in constructor, attribute


def test_listing_detectors_imports_no_backend() -> None:
    script = (
        "import sys; import clipswap_video.faces.backends as b; b.list_detectors(); "
        "heavy = {'dlib', 'onnxruntime', 'torch'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_or_no_swapper_is_a_config_error() -> None:
    with pytest.raises(ConfigValueError, match="unknown swapper 'nope'; choose one of classic"):
        create_backend("nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigValueError, match="no backend"):
        resolve_swapper("none")
