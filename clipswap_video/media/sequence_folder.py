"""The folder of an image sequence output, written whole or not at all.

`shot/frame_%06d.png` is written into `shot.partial/` beside `shot/` (the
naming of clipswap_video.atomic) and renamed to `shot/` only when every frame
is in it; a failure or Ctrl-C removes the partial folder, so nothing that
looks finished is left. The sequence needs a folder of its own for that: one
that does not exist yet, is empty, or holds only an earlier sequence of the
same pattern (and its audio.wav), which the new one replaces. Anything else in
it is refused before the first frame is decoded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from clipswap_video.atomic import partial_path
from clipswap_video.errors import OutputPathError, OutputUnwritableError
from clipswap_video.media.info import MediaInfo
from clipswap_video.media.sequence import SequencePattern

AUDIO_NAME = "audio.wav"
"""The sound of an image sequence output, beside its frames."""


class SequenceFolder:
    """`pattern`'s folder, checked against the input `source`; its partial
    folder exists from the constructor to `publish` or `abort`."""

    def __init__(self, pattern: SequencePattern, *, source: MediaInfo) -> None:
        _check_place(pattern, source)
        self.pattern = pattern
        self.folder = pattern.folder
        self.partial = partial_path(self.folder)
        for earlier in (self.folder, self.partial):  # the partial: a killed run's
            if earlier.is_dir():
                _check_replaceable(pattern, earlier)
        shutil.rmtree(self.partial, ignore_errors=True)
        try:
            self.partial.mkdir()
        except OSError as error:
            raise OutputUnwritableError(
                f"cannot create {self.partial}: {error.strerror or error}"
            ) from None

    def publish(self) -> None:
        """Puts the complete partial folder in place of `folder` (and of the
        sequence it held: moved aside first, removed once the new one is in)."""
        replaced = self.folder.with_name(f"{self.folder.name}.replaced.partial")
        try:
            if self.folder.exists():
                shutil.rmtree(replaced, ignore_errors=True)
                os.replace(self.folder, replaced)
            os.replace(self.partial, self.folder)
        except OSError as error:
            raise OutputUnwritableError(
                f"cannot put {self.partial} in place of {self.folder}: {error.strerror or error}"
            ) from None
        shutil.rmtree(replaced, ignore_errors=True)

    def abort(self) -> None:
        """Removes the partial folder; safe to call twice."""
        shutil.rmtree(self.partial, ignore_errors=True)


def _check_place(pattern: SequencePattern, source: MediaInfo) -> None:
    """Refuses a folder that cannot be replaced whole (the working folder, or
    one above it) or that holds the input sequence, and a parent folder that
    does not exist or cannot be written."""
    folder = pattern.folder.resolve()
    if folder == Path.cwd().resolve() or Path.cwd().resolve().is_relative_to(folder):
        raise OutputPathError(
            f"output {pattern}: an image sequence is written into a folder of its own, "
            f"renamed into place when complete; give one, such as shot/{pattern.name}"
        )
    if source.is_sequence:
        inputs = source.path if source.path.is_dir() else source.path.parent
        if inputs.resolve() == folder:
            raise OutputPathError(
                f"output {pattern}: its folder holds the input sequence; inputs are never "
                "overwritten, so give the output a folder of its own"
            )
    parent = folder.parent
    if not parent.is_dir():
        raise OutputUnwritableError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputUnwritableError(f"output folder {parent} is not writable")
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"output {pattern}: {pattern.folder} is a file, not a folder")


def _check_replaceable(pattern: SequencePattern, folder: Path) -> None:
    """Refuses a folder holding anything but files of `pattern` and the audio."""
    others = sorted(
        entry.name
        for entry in folder.iterdir()
        if not entry.is_file()
        or (entry.name != AUDIO_NAME and pattern.number_of(entry.name) is None)
    )
    if others:
        listed = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise OutputPathError(
            f"output folder {folder} holds other files ({listed}); an image sequence replaces "
            f"its whole folder, so give a new or empty one, or one holding only {pattern.name}"
        )


__all__ = ["AUDIO_NAME", "SequenceFolder"]
