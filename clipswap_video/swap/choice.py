"""Which swap backend `auto` is, and whether a backend's weight files are there,
without importing any backend (they load torch; `weights list` and `doctor` ask
this and nothing more).

`auto` is `clipswap` when its files are found, else `inswapper` when its files
are, else `classic`; FaceFusion's models are never picked by `auto` (they differ
too much to rank), only by name.
"""

from __future__ import annotations

from pathlib import Path

from clipswap_video.config_sections import SwapBackendName, SwapperName
from clipswap_video.errors import ConfigValueError
from clipswap_video.weights import (
    find_weight,
    load_manifest,
    locations,
    missing_files,
    search_dirs,
)

GENERATORS = ("clipswap_256.official", "facedancer_256.config_c_hq")
IDENTITY = "arcface_res50.official"


def find_clipswap_weights(weights_dir: Path | None) -> tuple[Path, Path] | None:
    """(generator, ArcFace) files when both are in a weights folder, else None.

    Raises:
        AmbiguousWeightsError: a folder holds two files for one of them.
    """
    return _find_pair(GENERATORS, IDENTITY, weights_dir)


def missing_clipswap_files(weights_dir: Path | None) -> list[str]:
    """The file names this backend lacks (a generator, the identity network)."""
    return missing_files([GENERATORS, (IDENTITY,)], weights_dir)


def missing_weights_reason(weights_dir: Path | None) -> str:
    """Why this backend cannot load: the files it lacks, the places each may sit
    and the folders searched."""
    entries = {entry.name: entry for entry in load_manifest()}
    lacking = []
    if all(find_weight(entries[name], weights_dir) is None for name in GENERATORS):
        places = ", or ".join(" or ".join(locations(entries[name])) for name in GENERATORS)
        lacking.append(f"no generator ({places})")
    if find_weight(entries[IDENTITY], weights_dir) is None:
        lacking.append(f"no identity network ({' or '.join(locations(entries[IDENTITY]))})")
    folders = ", ".join(str(folder) for folder in search_dirs(weights_dir))
    return (
        f"{' and '.join(lacking)} in the weights folders ({folders}; any case); "
        "see weights/README.md"
    )


SWAPPERS = ("inswapper_128.official", "inswapper_128.fp16")
"""Manifest entries, in the order they are preferred when a folder holds both."""
RECOGNISER = "insightface.w600k_r50"


def find_inswapper_weights(weights_dir: Path | None) -> tuple[Path, Path] | None:
    """(swapper, recogniser) files when both are in the weights folders, else None.

    Raises:
        AmbiguousWeightsError: a folder holds two files for one of them.
    """
    return _find_pair(SWAPPERS, RECOGNISER, weights_dir)


def missing_inswapper_files(weights_dir: Path | None) -> list[str]:
    """The file names this backend lacks (the swapper, the recogniser)."""
    return missing_files([SWAPPERS, (RECOGNISER,)], weights_dir)


def missing_inswapper_reason(weights_dir: Path | None) -> str:
    """What the inswapper backend lacks and the folders searched."""
    lacking = " and no ".join(missing_inswapper_files(weights_dir))
    folders = ", ".join(str(folder) for folder in search_dirs(weights_dir))
    return f"no {lacking} in {folders} (`weights list` shows where each may sit)"


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


def _find_pair(
    models: tuple[str, ...], identity: str, weights_dir: Path | None
) -> tuple[Path, Path] | None:
    """The first of `models` found and the `identity` file, when both are found."""
    entries = {entry.name: entry for entry in load_manifest()}
    identity_file = find_weight(entries[identity], weights_dir)
    if identity_file is None:
        return None
    for name in models:
        model = find_weight(entries[name], weights_dir)
        if model is not None:
            return model, identity_file
    return None


__all__ = [
    "GENERATORS",
    "IDENTITY",
    "RECOGNISER",
    "SWAPPERS",
    "find_clipswap_weights",
    "find_inswapper_weights",
    "missing_clipswap_files",
    "missing_inswapper_files",
    "missing_inswapper_reason",
    "missing_weights_reason",
    "resolve_swapper",
]
