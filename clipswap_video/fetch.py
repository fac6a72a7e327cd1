"""Downloading weight files: resumable, checked against the full SHA-256, atomic.

A download goes to `<stem>.partial<.ext>` beside its destination (the naming
rule of clipswap_video.atomic; not its `atomic_output`, which removes the
partial file on an error, where a failed download keeps it for a resume),
resumes with an HTTP Range request when a partial file is there, and is
renamed into place only once its size and SHA-256 match the manifest.
Archives (the insightface pack) are verified, then extracted into a temporary
folder renamed into place.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from clipswap_video.atomic import partial_path
from clipswap_video.digests import sha256_of
from clipswap_video.errors import (
    AmbiguousWeightsError,
    ConfigValueError,
    CorruptWeightsError,
    DownloadError,
)
from clipswap_video.weights import SearchFolder, WeightEntry, locate_in, search_dirs

_CHUNK = 1 << 20
"""Bytes read from the network at a time."""


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


__all__ = ["default_folder", "fetch"]
