"""Finding the data files that ship with the project (configs/, weights/manifest.toml).

In a source checkout (and an editable install) they sit at the repository's top
level, as DESIGN.md lays out; a built wheel carries them inside the package
under `_data/` (pyproject.toml's force-include). Both are looked up here only.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_path(relative: str, packaged: str) -> Path:
    """The checkout's `relative` path if present, else the wheel's `_data/packaged`."""
    in_checkout = _PACKAGE.parent / relative
    return in_checkout if in_checkout.exists() else _PACKAGE / "_data" / packaged


def weights_manifest_path() -> Path:
    return data_path("weights/manifest.toml", "manifest.toml")


def configs_dir() -> Path:
    return data_path("configs", "configs")


__all__ = ["configs_dir", "data_path", "weights_manifest_path"]
