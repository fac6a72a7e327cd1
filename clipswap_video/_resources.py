"""What this install has: the data files that ship with the project (configs/,
weights/manifest.toml), and the packages of optional extras.

In a source checkout (and an editable install) they sit at the repository's top
level (docs/architecture.md); a built wheel carries them inside the package
under `_data/` (pyproject.toml's force-include). Both are looked up here only.

A render node installs `clipswap-video` alone; the demo media (scikit-image,
matplotlib) and training (decord, tensorboard) come with the `[demo]` and
`[train]` extras. Code that needs one imports it with `import_extra`, so a
missing extra is one error line naming the pip command, not a traceback.
"""

import importlib
from pathlib import Path
from types import ModuleType

from clipswap_video.errors import MissingExtraError

_PACKAGE = Path(__file__).resolve().parent


def data_path(relative: str, packaged: str) -> Path:
    """The checkout's `relative` path if present, else the wheel's `_data/packaged`."""
    in_checkout = _PACKAGE.parent / relative
    return in_checkout if in_checkout.exists() else _PACKAGE / "_data" / packaged


def weights_manifest_path() -> Path:
    return data_path("weights/manifest.toml", "manifest.toml")


def configs_dir() -> Path:
    return data_path("configs", "configs")


def import_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """`module`, imported; `needed_for` (e.g. "demo-media") names what needs it
    in the error raised when `extra` is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        package = module.partition(".")[0]
        raise MissingExtraError(
            f"{needed_for} needs the [{extra}] extra ({package} is not installed): "
            f"pip install 'clipswap-video[{extra}]'"
        ) from None


__all__ = ["configs_dir", "data_path", "import_extra", "weights_manifest_path"]
