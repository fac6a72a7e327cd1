"""Weight files: the manifest of known files and where they are looked up.

Search order: an explicit folder (`--weights DIR`), then `$CLIPSWAP_WEIGHTS`,
then `./weights`. Nothing here downloads anything.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from clipswap_video._resources import weights_manifest_path

ENV_VAR = "CLIPSWAP_WEIGHTS"


@dataclass(frozen=True)
class WeightEntry:
    """One known weight file, as listed in weights/manifest.toml."""

    name: str
    file: str
    kind: str
    size_bytes: int
    sha256: str
    source: str
    licence: str
    url: str = ""
    """Where `weights fetch` downloads it from ("" = pass --url)."""
    archive: str = ""
    """"zip" for a pack that unpacks into the folder `file`."""
    preprocessing: dict[str, str] | None = None
    """What the weights expect (crop, template, colour, value range), as stored with them."""


def load_manifest(path: Path | None = None) -> list[WeightEntry]:
    """The entries of the manifest (the packaged one by default)."""
    with open(path or weights_manifest_path(), "rb") as file:
        table = tomllib.load(file)
    return [WeightEntry(**entry) for entry in table.get("weights", [])]


def search_dirs(explicit: Path | None = None) -> list[Path]:
    """The folders searched for weight files, first match wins."""
    candidates = [explicit, Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None]
    return [folder for folder in [*candidates, Path("weights")] if folder is not None]


def find_weight(entry: WeightEntry, explicit: Path | None = None) -> Path | None:
    """Where `entry`'s file is, or None when no search folder holds it.

    A converted `<stem>.safetensors` beside a Keras `.h5` is preferred to it in
    each folder (it loads without h5py and faster).
    """
    names = [entry.file]
    if entry.file.endswith(".h5"):
        names.insert(0, entry.file[: -len(".h5")] + ".safetensors")
    for folder in search_dirs(explicit):
        for name in names:
            if (folder / name).exists():
                return folder / name
    return None


__all__ = ["ENV_VAR", "WeightEntry", "find_weight", "load_manifest", "search_dirs"]
