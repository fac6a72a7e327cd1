"""The swap backends by name, `auto` resolved, and building the chosen one.

The table names each backend's class as "module:Class", imported only when
that backend is built; the backends depend on the interface (swap.backend)
while nothing depends on them, except that `auto` asks the clipswap and
inswapper backends whether their files are there. `SwapBackendName` in clipswap_video.config is the
one list of names; a test keeps this table's keys equal to it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from clipswap_video.config import SwapBackendName, SwapperName, SwapSettings
from clipswap_video.errors import ConfigValueError
from clipswap_video.swap.adjust import adjusted
from clipswap_video.swap.backend import SwapBackend
from clipswap_video.swap.clipswap import find_clipswap_weights, missing_clipswap_files
from clipswap_video.swap.inswapper import find_inswapper_weights, missing_inswapper_files
from clipswap_video.weights import search_dirs

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
    """The backend `name`, loaded. `auto` must be resolved before (see `resolve_swapper`).

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


def resolve_swapper(
    name: SwapperName, weights_dir: Path | None = None
) -> tuple[SwapBackendName, str | None]:
    """The backend `name` stands for, and the line to print when `auto` falls
    back: `auto` is `clipswap` when its weight files are found, else `inswapper`
    when its files are, else `classic`; the line says which and why.

    Raises:
        ConfigValueError: `none`, which has no backend.
    """
    if name == "none":
        raise ConfigValueError("swap.swapper = none swaps no face: there is no backend to load")
    if name != "auto":
        return name, None
    if find_clipswap_weights(weights_dir) is not None:
        return "clipswap", None
    no_clipswap = f"no {' or '.join(missing_clipswap_files(weights_dir))}"
    folders = ", ".join(str(folder) for folder in search_dirs(weights_dir))
    if find_inswapper_weights(weights_dir) is not None:
        return "inswapper", (
            f"using the inswapper swapper (insightface, 128 px): ClipSwap's files are not "
            f"there ({no_clipswap} in {folders})"
        )
    no_inswapper = f"no {' or '.join(missing_inswapper_files(weights_dir))}"
    return "classic", (
        f"using the classic swapper (landmark warp, lower fidelity): neither ClipSwap's "
        f"nor inswapper's files are there ({no_clipswap}; {no_inswapper}; in {folders}; "
        "`weights list` shows where each may sit)"
    )


__all__ = ["SWAP_BACKENDS", "create_backend", "list_backends", "resolve_swapper"]
