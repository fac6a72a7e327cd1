"""Weight files: the manifest of known files and where they are looked up.

Search order: an explicit folder (`--weights DIR`), then `$CLIPSWAP_WEIGHTS`,
then `./weights`; the first folder that holds a file wins. Inside a folder the
file may sit at its flat name or at one of the manifest's `paths` (the layouts
of the official repositories), every component in any letter case. Nothing
here downloads anything.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

from clipswap_video._resources import weights_manifest_path
from clipswap_video.errors import AmbiguousWeightsError, ConfigValueError, MissingWeightsError

ENV_VAR = "CLIPSWAP_WEIGHTS"

WeightRole = Literal[
    "generator",
    "swapper",
    "identity",
    "detector",
    "landmarks",
    "converter",
    "enhancer",
    "mask",
    "pack",
]
"""What a file does: generator (takes an identity network's embedding), swapper (a
whole swap model), identity, detector, landmarks, converter (maps one embedding
space to another), enhancer (restores a face), mask (segments a face: occlusion,
face parsing) or pack (a folder of files, fetched as one archive)."""
ROLES: tuple[WeightRole, ...] = get_args(WeightRole)


@dataclass(frozen=True)
class WeightEntry:
    """One known weight file, as listed in weights/manifest.toml."""

    name: str
    role: WeightRole
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
    paths: tuple[str, ...] = ()
    """Other places inside a weights folder where the file may sit (relative, `/`-separated)."""
    preprocessing: dict[str, str] | None = None
    """What the weights expect (crop, template, colour, value range), as stored with them."""


@dataclass(frozen=True)
class SearchFolder:
    """One folder of the search order, and what put it there."""

    path: Path
    origin: str
    """"--weights", "$CLIPSWAP_WEIGHTS" or "./weights"."""

    @property
    def label(self) -> str:
        return self.origin if self.origin == "./weights" else f"{self.origin} {self.path}"


@dataclass(frozen=True)
class FoundWeight:
    """The file picked for a manifest entry, and why it was picked."""

    path: Path
    location: str
    """The entry's location it matched: `file` or one of `paths`."""
    folder: SearchFolder

    @property
    def why(self) -> str:
        converted = self.path.suffix.lower() == ".safetensors" and self.location.endswith(".h5")
        return f"{self.folder.label}, as {self.location}" + (" (converted)" if converted else "")


def load_manifest(path: Path | None = None) -> list[WeightEntry]:
    """The entries of the manifest (the packaged one by default)."""
    with open(path or weights_manifest_path(), "rb") as file:
        table = tomllib.load(file)
    return [_entry(entry) for entry in table.get("weights", [])]


def _entry(table: dict[str, Any]) -> WeightEntry:
    if table.get("role") not in ROLES:
        raise ConfigValueError(
            f"manifest entry {table.get('name')!r} has role {table.get('role')!r}; "
            f"expected one of {', '.join(ROLES)}"
        )
    return WeightEntry(**{**table, "paths": tuple(table.get("paths", ()))})


def search_folders(explicit: Path | None = None) -> list[SearchFolder]:
    """The folders searched for weight files, in order; the first that holds a file wins."""
    folders = [SearchFolder(explicit, "--weights")] if explicit is not None else []
    if os.environ.get(ENV_VAR):
        folders.append(SearchFolder(Path(os.environ[ENV_VAR]), f"${ENV_VAR}"))
    return [*folders, SearchFolder(Path("weights"), "./weights")]


def search_dirs(explicit: Path | None = None) -> list[Path]:
    """The paths of `search_folders`."""
    return [folder.path for folder in search_folders(explicit)]


def locations(entry: WeightEntry) -> list[str]:
    """Where `entry`'s file may sit inside a weights folder: its flat name first."""
    return [entry.file, *entry.paths]


def looked_for(entry: WeightEntry, explicit: Path | None = None) -> str:
    """Where `entry`'s file is looked for, as a phrase for a one-line error."""
    folders = ", ".join(str(path) for path in search_dirs(explicit))
    return f"{' or '.join(locations(entry))} (any case) in {folders}"


def find_weight(entry: WeightEntry, explicit: Path | None = None) -> Path | None:
    """Where `entry`'s file is, or None when no search folder holds it.

    Raises:
        AmbiguousWeightsError: the first folder that holds it holds two files for it.
    """
    found = locate(entry, explicit)
    return found.path if found is not None else None


def setting_or_found(
    setting: str, key: str, names: Sequence[str], explicit: Path | None, need: str
) -> Path:
    """The file the setting `key` names (`setting`), else the first of the manifest
    entries `names` found in the weights folders.

    Raises:
        MissingWeightsError: neither is there; `need` says what needed it.
    """
    if setting:
        path = Path(setting).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"{key} {path} is not a file")
        return path
    entries = {entry.name: entry for entry in load_manifest()}
    for name in names:
        found = find_weight(entries[name], explicit)
        if found is not None:
            return found
    files = " or ".join(entries[name].file for name in names)
    folders = ", ".join(str(folder) for folder in search_dirs(explicit))
    raise MissingWeightsError(
        f"{need} needs {files} in {folders} (`weights list` shows where each may sit), "
        f"or {key} = FILE"
    )


def missing_files(groups: list[tuple[str, ...]], explicit: Path | None = None) -> list[str]:
    """For each group of manifest names that stand in for one another, the first's
    file name when none of them is found (what a backend lacks, for a one-line note).

    Raises:
        AmbiguousWeightsError: a folder holds two files for one of them.
    """
    entries = {entry.name: entry for entry in load_manifest()}
    return [
        entries[group[0]].file
        for group in groups
        if all(find_weight(entries[name], explicit) is None for name in group)
    ]


def locate(entry: WeightEntry, explicit: Path | None = None) -> FoundWeight | None:
    """`find_weight`, with the folder and location that picked the file.

    Raises:
        AmbiguousWeightsError: the first folder that holds it holds two files for it.
    """
    for folder in search_folders(explicit):
        found = locate_in(entry, folder)
        if found is not None:
            return found
    return None


def locate_in(entry: WeightEntry, folder: SearchFolder) -> FoundWeight | None:
    """`entry`'s file in this one folder, or None.

    A converted `<stem>.safetensors` beside a Keras `.h5` is preferred to it (it
    loads without h5py and faster); that pair is one file, not two.

    Raises:
        AmbiguousWeightsError: two different files, at two locations or at one
            location in two letter cases.
    """
    candidates: list[tuple[Path, str]] = []
    for location in locations(entry):
        for path in _matches(folder.path, location):
            # A symlink or hard link to a file already found is that file.
            if not any(_same_file(path, seen) for seen, _ in candidates):
                candidates.append((path, location))
    if len(candidates) > 1:
        raise AmbiguousWeightsError(_conflict(entry, folder, [path for path, _ in candidates]))
    return FoundWeight(candidates[0][0], candidates[0][1], folder) if candidates else None


def _conflict(entry: WeightEntry, folder: SearchFolder, paths: list[Path]) -> str:
    return (
        f"weights folder {folder.path} holds {len(paths)} files for {entry.name}: "
        f"{' and '.join(str(path) for path in paths)}; remove or rename all but one, "
        "or pass --weights a folder that holds one"
    )


def _matches(folder: Path, location: str) -> list[Path]:
    """The files at `location` under `folder`, each component matched in any case."""
    *parents, name = PurePosixPath(location).parts
    directories = [folder]
    for part in parents:
        directories = [d for parent in directories for d in _named(parent, part) if d.is_dir()]
    return [path for directory in directories for path in _preferred(directory, name)]


def _preferred(directory: Path, name: str) -> list[Path]:
    """`name` in `directory`, or its converted `.safetensors` when that is there."""
    stem, suffix = os.path.splitext(name)
    for wanted in [stem + ".safetensors", name] if suffix == ".h5" else [name]:
        found = [path for path in _named(directory, wanted) if path.exists()]
        if found:
            return found
    return []


def sidecar(path: Path, suffix: str) -> Path | None:
    """The regular file beside `path` named its stem + `suffix` in any letter case
    (FaceFusion's `simswap_256.hash` beside `simswap_256.onnx`), or None. A folder
    or a device of that name is no sidecar: reading it could block or never end."""
    found = [p for p in _named(path.parent, path.stem + suffix) if p.is_file()]
    return found[0] if found else None


def _named(directory: Path, name: str) -> list[Path]:
    """The entries of `directory` called `name` in any letter case. The listing is
    compared, not `exists()`, which is case-sensitive on most Linux filesystems."""
    try:
        entries = sorted(os.listdir(directory))
    except OSError:  # missing, not a folder, or unreadable: it holds nothing
        return []
    wanted = name.casefold()
    return [directory / entry for entry in entries if entry.casefold() == wanted]


def _same_file(path: Path, other: Path) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False


def entry_named(entries: list[WeightEntry], name: str) -> WeightEntry:
    """The manifest entry `name` (or whose file is `name`)."""
    for entry in entries:
        if name in (entry.name, entry.file):
            return entry
    known = ", ".join(entry.name for entry in entries)
    raise MissingWeightsError(f"no weight named {name!r} in the manifest; known: {known}")


__all__ = [
    "ENV_VAR",
    "ROLES",
    "FoundWeight",
    "SearchFolder",
    "WeightEntry",
    "WeightRole",
    "entry_named",
    "find_weight",
    "load_manifest",
    "locate",
    "locate_in",
    "locations",
    "looked_for",
    "missing_files",
    "search_dirs",
    "search_folders",
    "setting_or_found",
    "sidecar",
]
