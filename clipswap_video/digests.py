"""Digests of weight files: SHA-256 and CRC32 in one read, a cache of them, and
FaceFusion's `.hash` file.

The full SHA-256 is what the manifest publishes (open_clip trusts a cached file
by a hash prefix, timm checks no hash by default; neither is enough for files
that run code paths on a render farm). FaceFusion keeps a CRC32 in a `.hash`
file beside each model; it is read defensively. `HashCache` keeps what was
computed, so that `weights list` reads a 500 MB file once, not on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

_CHUNK = 1 << 20
"""Bytes read from a file at a time."""
SidecarStatus = Literal["matches", "mismatch", "unreadable", "skipped"]

_CRC32 = re.compile(rb"[0-9a-fA-F]{8}")
_SIDECAR_LIMIT = 64
"""Bytes read from a `.hash` file: 8 hex digits and some white space fit; more is not one."""
_CACHE_LIMIT = 16 << 20
"""A cache file larger than this is not read: it was not written by this code."""


class Digests(NamedTuple):
    """A file's SHA-256 and CRC32 (FaceFusion's `.hash`), both lowercase hex."""

    sha256: str
    crc32: str


@dataclass(frozen=True)
class SidecarCheck:
    """FaceFusion's `.hash` file beside a found file: 8 hex digits, the CRC32
    (zlib.crc32, '%08x') of the whole file."""

    path: Path
    expected: str | None
    """Its 8 hex digits, lowercase; None when it is unreadable or not 8 hex digits."""
    actual: str | None = None
    """The found file's CRC32; None when the file was not read."""
    problem: str = ""
    """Why the `.hash` file does not count (status "unreadable")."""

    @property
    def status(self) -> SidecarStatus:
        if self.expected is None:
            return "unreadable"
        if self.actual is None:
            return "skipped"
        return "matches" if self.actual == self.expected else "mismatch"


class HashCache:
    """Computed digests by (resolved path, size, mtime_ns), kept in a JSON file.

    A file whose size and modification time are unchanged is not read again when
    `reuse` is set (`weights list`); `weights verify` reads every file and
    refreshes the entries. A missing, corrupt or unreadable cache file is an
    empty cache, and one that cannot be written is left as it is: the cache only
    saves time, it never fails a command.
    """

    def __init__(self, file: Path | None, *, reuse: bool = True) -> None:
        self.file = file
        self.reuse = reuse
        self._entries = _read_cache(file) if file is not None and reuse else {}
        self._changed = False

    def digests(self, path: Path) -> Digests:
        """`path`'s digests, from the cache when it may and they are there.

        Raises:
            OSError: the file cannot be read.
        """
        key = str(path.resolve())
        stat = path.stat()
        cached = _cached(self._entries.get(key), stat.st_size, stat.st_mtime_ns)
        if self.reuse and cached is not None:
            return cached
        digests = digests_of(path)
        self._entries[key] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": digests.sha256,
            "crc32": digests.crc32,
        }
        self._changed = True
        return digests

    def save(self) -> None:
        """Writes the cache when something was added: a whole file or nothing."""
        if self.file is None or not self._changed:
            return
        merged = {**_read_cache(self.file), **self._entries}  # verify read none of it
        kept = {key: value for key, value in merged.items() if os.path.isfile(key)}
        text = json.dumps({"version": 1, "files": kept}, indent=1, sort_keys=True)
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            # A temporary name of its own, not partial_path: two commands saving at
            # once must not write into one partial file.
            handle, scratch = tempfile.mkstemp(dir=self.file.parent, prefix=".sha256.")
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(scratch, self.file)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(scratch)


def hash_cache_file() -> Path | None:
    """$XDG_CACHE_HOME/clipswap-video/sha256.json (~/.cache without it), or None
    when there is no home to put it in."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "clipswap-video" / "sha256.json"


def _read_cache(file: Path) -> dict[str, dict[str, Any]]:
    try:
        if file.stat().st_size > _CACHE_LIMIT:
            return {}
        table = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or bad UTF-8
        return {}
    files = table.get("files") if isinstance(table, dict) else None
    if not isinstance(files, dict):
        return {}
    return {key: value for key, value in files.items() if isinstance(value, dict)}


def _cached(entry: dict[str, Any] | None, size: int, mtime_ns: int) -> Digests | None:
    """The digests of a cache entry for a file of this size and time, when well-formed."""
    if entry is None or entry.get("size") != size or entry.get("mtime_ns") != mtime_ns:
        return None
    sha256, crc32 = entry.get("sha256"), entry.get("crc32")
    if not isinstance(sha256, str) or re.fullmatch(r"[0-9a-f]{64}", sha256) is None:
        return None
    if not isinstance(crc32, str) or re.fullmatch(r"[0-9a-f]{8}", crc32) is None:
        return None
    return Digests(sha256, crc32)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, or of every file of a folder (sorted by relative path)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def digests_of(path: Path) -> Digests:
    """A file's SHA-256 and CRC32, in one read."""
    digest, crc = hashlib.sha256(), 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
    return Digests(digest.hexdigest(), f"{crc:08x}")


def read_sidecar(path: Path) -> SidecarCheck:
    """FaceFusion's `.hash` file at `path`, read defensively: any content, any
    size; only 8 hex digits (white space around them ignored) count."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(_SIDECAR_LIMIT + 1)
    except OSError as error:
        return SidecarCheck(path, None, problem=f"unreadable ({error.strerror or error})")
    digits = head.strip()
    if len(head) > _SIDECAR_LIMIT or _CRC32.fullmatch(digits) is None:
        return SidecarCheck(path, None, problem="unreadable (not 8 hex digits)")
    return SidecarCheck(path, digits.decode("ascii").lower())


__all__ = [
    "Digests",
    "HashCache",
    "SidecarCheck",
    "SidecarStatus",
    "digests_of",
    "hash_cache_file",
    "read_sidecar",
    "sha256_of",
]
