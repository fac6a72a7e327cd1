"""Imports of packages that only an optional extra installs.

A render node installs `clipswap-video` alone; the demo media (scikit-image,
matplotlib) and training (decord, tensorboard) come with the `[demo]` and
`[train]` extras. Code that needs one imports it here, so a missing extra is
one error line naming the pip command instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from clipswap_video.errors import MissingExtraError


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


__all__ = ["import_extra"]
