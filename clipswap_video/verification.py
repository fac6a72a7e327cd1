"""Checking the weight files the manifest lists: where each one is, and whether
its full SHA-256 matches the published one (and its CRC32 FaceFusion's `.hash`
file beside it); `weights list` and `weights verify` print the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clipswap_video.digests import HashCache, SidecarCheck, digests_of, read_sidecar
from clipswap_video.errors import AmbiguousWeightsError
from clipswap_video.weights import FoundWeight, WeightEntry, locate, sidecar

VerifyStatus = Literal[
    "ok", "mismatch", "missing", "unverified", "found", "converted", "conflict", "unreadable"
]
HashStatus = Literal["matches", "mismatch", "unknown", "converted", "folder", "skipped"]
"""The computed SHA-256 against the manifest's: equal, different, no published
hash, a converted .safetensors (the published hash is its .h5's), a pack folder
(not hashed) or not hashed (`weights list --no-hash`)."""


@dataclass(frozen=True)
class Verification:
    """What `verify` found for one manifest entry."""

    entry: WeightEntry
    path: Path | None
    status: VerifyStatus
    sha256: str | None = None
    """The SHA-256 computed for `path`; None when it was not read."""
    found: FoundWeight | None = None
    """The folder and location that picked `path`."""
    conflict: str = ""
    """Status "conflict": the line naming the files that compete for the entry."""
    unreadable: str = ""
    """Status "unreadable": why the file could not be read."""
    hash_status: HashStatus | None = None
    """`sha256` against the manifest; None when there is no file."""
    facefusion: SidecarCheck | None = None
    """FaceFusion's `.hash` file beside `path`, when there is one."""


def verify(
    entry: WeightEntry,
    weights_dir: Path | None = None,
    *,
    hash_file: bool = True,
    hashes: HashCache | None = None,
) -> Verification:
    """Finds `entry`'s file and checks its full SHA-256 against the manifest and
    its CRC32 against FaceFusion's `.hash` file beside it, if any (`hash_file=False`:
    only whether it is there, status "found"; `hashes`: a cache to read and fill).
    Two files for it in one folder is status "conflict", with the error's line; a
    file that cannot be read is status "unreadable", with the reason."""
    try:
        found = locate(entry, weights_dir)
    except AmbiguousWeightsError as error:
        return Verification(entry, None, "conflict", conflict=str(error))
    if found is None:
        return Verification(entry, None, "missing")
    path = found.path
    converted = path.suffix.lower() == ".safetensors" and found.location.endswith(".h5")
    folder = entry.archive != "" or path.is_dir()  # an unpacked pack: no single published hash
    beside = None if converted or folder else sidecar(path, ".hash")
    facefusion = read_sidecar(beside) if beside is not None else None
    if not hash_file:
        skipped: HashStatus = "folder" if folder else "skipped"
        return Verification(
            entry, path, "found", found=found, hash_status=skipped, facefusion=facefusion
        )
    if folder:
        return Verification(entry, path, "unverified", found=found, hash_status="folder")
    try:
        digests = hashes.digests(path) if hashes is not None else digests_of(path)
    except OSError as error:
        reason = f"cannot read {path} ({error.strerror or error})"
        return Verification(entry, path, "unreadable", found=found, unreadable=reason)
    if facefusion is not None and facefusion.expected is not None:
        facefusion = SidecarCheck(facefusion.path, facefusion.expected, digests.crc32)
    status: VerifyStatus
    hash_status: HashStatus
    if converted:  # the published hash is the .h5's
        status, hash_status = "converted", "converted"
    elif not entry.sha256:
        status, hash_status = "unverified", "unknown"
    elif digests.sha256 == entry.sha256.lower():
        status, hash_status = "ok", "matches"
    else:
        status, hash_status = "mismatch", "mismatch"
    return Verification(
        entry,
        path,
        status,
        digests.sha256,
        found,
        hash_status=hash_status,
        facefusion=facefusion,
    )


__all__ = ["HashStatus", "Verification", "VerifyStatus", "verify"]
