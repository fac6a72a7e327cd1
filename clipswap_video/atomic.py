"""Writing a file so that it is either whole or absent: a partial file, renamed.

    with atomic_output(Path("out.png")) as partial:   # out.partial.png
        cv2.imwrite(str(partial), picture)
    write_text_atomic(Path("report.json"), text)

Every output of the tool (videos, previews, reports, checkpoints, converted
and downloaded weights) is written to `partial_path(path)` beside its target
and renamed onto it with os.replace (atomic within one file system) only when
complete, so a crash, Ctrl-C or full disk never leaves a file that looks
finished, and an earlier file at `path` stays as it was until then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_path(path: Path) -> Path:
    """Where `path` is written until it is complete: `out.mp4` -> `out.partial.mp4`.

    The extension stays last, because encoders and readers pick the format by
    it; folder scans skip such names (`is_partial`)."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def is_partial(path: Path) -> bool:
    """Whether `path` is named as `partial_path` names an unfinished file."""
    return path.stem.endswith(".partial") or path.name.endswith(".partial")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yields the partial path to write `path`'s content to; renames it onto
    `path` when the block ends normally, and removes it when the block raises."""
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:  # Ctrl-C too: nothing half-written stays behind
        partial.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` through a partial file."""
    with atomic_output(path) as partial:
        partial.write_text(text, encoding="utf-8")


__all__ = ["atomic_output", "is_partial", "partial_path", "write_text_atomic"]
