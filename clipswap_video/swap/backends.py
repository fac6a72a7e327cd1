"""The swap backends by name, and building the chosen one with the knobs its
settings turn (swap.adjust).

The table names each backend's class as "module:Class", imported only when
that backend is built; the backends depend on the interface (swap.backend)
while nothing depends on them. Which backend `auto` is comes from swap.choice,
which loads none of them. `SwapBackendName` in clipswap_video.config_sections is the
one list of names; a test keeps this table's keys equal to it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from clipswap_video.config_sections import SwapBackendName, SwapSettings
from clipswap_video.errors import ConfigValueError
from clipswap_video.swap.adjust import adjusted
from clipswap_video.swap.backend import SwapBackend

SWAP_BACKENDS: dict[SwapBackendName, str] = {
    "classic": "clipswap_video.swap.classic:ClassicBackend",
    "clipswap": "clipswap_video.swap.clipswap:ClipSwapBackend",
    "inswapper": "clipswap_video.swap.inswapper:InswapperBackend",
    "onnx": "clipswap_video.swap.onnx_swapper:OnnxSwapperBackend",
}
"""Backend name -> "module:Class"; the class is called as Class(weights_dir, settings)."""

BackendClass = Callable[[Path | None, SwapSettings], SwapBackend]


def list_backends() -> list[SwapBackendName]:
    """The backend names, sorted."""
    return sorted(SWAP_BACKENDS)


def create_backend(
    name: SwapBackendName, weights_dir: Path | None = None, settings: SwapSettings | None = None
) -> SwapBackend:
    """The backend `name`, loaded. `auto` must be resolved before (swap.choice.resolve_swapper).

    Raises:
        ConfigValueError: unknown backend name.
        MissingWeightsError / CorruptWeightsError: the backend's model files.
    """
    entry = SWAP_BACKENDS.get(name)
    if entry is None:
        raise ConfigValueError(
            f"unknown swapper {name!r}; choose one of {', '.join(list_backends())}"
        )
    module, _, class_name = entry.partition(":")
    backend_class: BackendClass = getattr(importlib.import_module(module), class_name)
    settings = settings or SwapSettings()
    return adjusted(backend_class(weights_dir, settings), settings)


__all__ = ["SWAP_BACKENDS", "create_backend", "list_backends"]
