"""Verifying and downloading weight files: full SHA-256, resumable, atomic.

A download goes to `<stem>.partial<.ext>` beside its destination (the naming
rule of clipswap_video.atomic; not its `atomic_output`, which removes the
partial file on an error, where a failed download keeps it for a resume),
resumes with an HTTP Range request when a partial file is there, and is
renamed into place only once its size and SHA-256 match the manifest (open_clip trusts a cached
file by a hash prefix, timm checks no hash by default; neither is enough for
files that run code paths on a render farm). Archives (the insightface pack)
are verified, then extracted into a temporary folder renamed into place.

`verify` also checks FaceFusion's CRC32 `.hash` file beside a model, and keeps
what it computed in a small cache (`HashCache`), so that `weights list` reads a
500 MB file once, not on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from clipswap_video.atomic import partial_path
from clipswap_video.errors import (
    AmbiguousWeightsError,
    ConfigValueError,
    CorruptWeightsError,
    DownloadError,
    MissingWeightsError,
)
from clipswap_video.weights import (
    FoundWeight,
    SearchFolder,
    WeightEntry,
    locate,
    locate_in,
    search_dirs,
    sidecar,
)

_CHUNK = 1 << 20
VerifyStatus = Literal[
    "ok", "mismatch", "missing", "unverified", "found", "converted", "conflict", "unreadable"
]
HashStatus = Literal["matches", "mismatch", "unknown", "converted", "folder", "skipped"]
"""The computed SHA-256 against the manifest's: equal, different, no published
hash, a converted .safetensors (the published hash is its .h5's), a pack folder
(not hashed) or not hashed (`weights list --no-hash`)."""
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


def fetch(
    entry: WeightEntry,
    folder: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Downloads `entry` into `folder` and returns its final path.

    Raises:
        ConfigValueError: no URL or no hash to check the download against.
        AmbiguousWeightsError: `folder` already holds the file elsewhere than
            at its flat name, where the download would be a second copy.
        DownloadError: the transfer failed (the partial file is kept for a resume).
        CorruptWeightsError: the finished download has the wrong size or hash (deleted).
    """
    source = url or entry.url
    expected = (sha256 or entry.sha256).lower()
    if not source:
        raise ConfigValueError(f"{entry.name} has no download address; pass --url")
    if not expected:
        raise ConfigValueError(
            f"{entry.name} has no known SHA-256 to check a download against; pass --sha256"
        )
    _check_no_other_copy(entry, folder)
    folder.mkdir(parents=True, exist_ok=True)
    download = partial_path(folder / f"{Path(entry.file).name}{'.zip' if entry.archive else ''}")
    _download(source, download, entry.name, on_bytes, timeout)
    _check(download, entry, expected)
    target = folder / entry.file
    if entry.archive:
        _extract(download, target)
        download.unlink()
    else:
        os.replace(download, target)
    return target


def _check_no_other_copy(entry: WeightEntry, folder: Path) -> None:
    """A download lands at the flat name `file`; a copy already elsewhere (an
    official sub-folder, another letter case) would make two files for one entry.
    A converted `.safetensors` there is no obstacle: it stays preferred to the .h5."""
    held = locate_in(entry, SearchFolder(folder, "--weights"))  # the destination fetch was given
    target = folder / entry.file
    if held is None or held.path == target or (target.exists() and held.path.samefile(target)):
        return
    if held.location == entry.file and held.path.suffix.lower() == ".safetensors":
        return
    raise AmbiguousWeightsError(
        f"{folder} already holds {entry.name} at {held.path}; a download would add "
        f"{folder / entry.file} beside it: remove that file first, or fetch into "
        "another --weights folder"
    )


def _download(
    url: str, partial: Path, name: str, on_bytes: Callable[[int], None] | None, timeout: float
) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            # 206: the server resumes; 200: it ignored the Range header, start over.
            mode = "ab" if have and response.status == 206 else "wb"
            announced = int(response.headers.get("Content-Length") or -1)
            received = 0
            with open(partial, mode) as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
            if 0 <= received < announced:  # read(n) returns short at EOF instead of raising
                raise http.client.IncompleteRead(b"", announced - received)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: the partial is whole
            return
        raise DownloadError(f"download of {name} from {url} failed: HTTP {error.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"download of {name} from {url} failed ({reason}); run the same command to resume"
        ) from None


def _check(partial: Path, entry: WeightEntry, expected: str) -> None:
    size = partial.stat().st_size
    actual = sha256_of(partial)
    if actual == expected and (not entry.size_bytes or entry.archive or size == entry.size_bytes):
        return
    partial.unlink()
    raise CorruptWeightsError(
        f"download of {entry.name} has sha256 {actual} ({size} bytes), expected {expected}; "
        "deleted it: check the address and try again"
    )


def _extract(archive: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as scratch:
        unpacked = Path(scratch) / "unpacked"
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(unpacked)
        except zipfile.BadZipFile as error:
            raise CorruptWeightsError(f"{archive} is not a readable zip ({error})") from None
        inner = list(unpacked.iterdir())
        root = inner[0] if len(inner) == 1 and inner[0].is_dir() else unpacked
        if target.exists():
            shutil.rmtree(target)
        os.replace(root, target)


def default_folder(weights_dir: Path | None) -> Path:
    """Where `fetch` puts files: --weights, else $CLIPSWAP_WEIGHTS, else ./weights."""
    return search_dirs(weights_dir)[0]


def entry_named(entries: list[WeightEntry], name: str) -> WeightEntry:
    """The manifest entry `name` (or whose file is `name`)."""
    for entry in entries:
        if name in (entry.name, entry.file):
            return entry
    known = ", ".join(entry.name for entry in entries)
    raise MissingWeightsError(f"no weight named {name!r} in the manifest; known: {known}")


__all__ = [
    "Digests",
    "HashCache",
    "HashStatus",
    "SidecarCheck",
    "SidecarStatus",
    "Verification",
    "VerifyStatus",
    "default_folder",
    "digests_of",
    "entry_named",
    "fetch",
    "hash_cache_file",
    "read_sidecar",
    "sha256_of",
    "verify",
]
