"""Image sequences by name: patterns, frame numbers and the scan of a folder.

A sequence is named three ways, each resolved to one numbered run of files:

    plate/frame_%06d.exr   a printf pattern (%d, %04d, ...): the files it names
    'plate/*.png'          a glob (quoted in the shell): the files it matches
    plate/                 a folder holding one numbered sequence

A file's frame number is the last run of digits in its name (frame_001001.exr:
1001); the text around it names the sequence, so one folder can hold several
and a folder or glob that matches more than one is refused. Numbers need not
be contiguous: the missing ones are the sequence's gaps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from clipswap_video.errors import (
    ClipswapError,
    InputNotFoundError,
    OutputPathError,
    UnreadableInputError,
)

SEQUENCE_SUFFIXES = (".dpx", ".exr", ".png", ".tif", ".tiff")
"""The image formats read and written as sequences."""

_PRINTF = re.compile(r"%0?\d*d")  # what looks like a printf number; parse_pattern checks it
_GLOB = re.compile(r"[*?[]")
_LAST_NUMBER = re.compile(r"(\d+)(?=\D*$)")


@dataclass(frozen=True)
class SequencePattern:
    """File names `prefix` + number (zero-padded to `width`) + `suffix` in `folder`."""

    folder: Path
    prefix: str
    width: int
    suffix: str

    def __str__(self) -> str:
        return str(self.folder / self.name)

    @property
    def name(self) -> str:
        """The file names as printf writes them: frame_%06d.exr."""
        digits = f"%0{self.width}d" if self.width > 1 else "%d"
        return f"{self.prefix}{digits}{self.suffix}"

    def path(self, number: int) -> Path:
        return self.folder / f"{self.prefix}{number:0{self.width}d}{self.suffix}"

    def number_of(self, name: str) -> int | None:
        """The frame number of file `name` if the pattern names it, else None."""
        match = _LAST_NUMBER.search(name)
        if match is None or name[: match.start()] != self.prefix:
            return None
        number = int(match.group(1))
        return number if self.path(number).name == name else None


@dataclass(frozen=True)
class ImageSequence:
    """The files of one sequence, by frame number."""

    pattern: SequencePattern
    files: tuple[tuple[int, Path], ...]  # (number, file), ascending; never empty

    @property
    def first(self) -> int:
        return self.files[0][0]

    @property
    def last(self) -> int:
        return self.files[-1][0]

    @property
    def kind(self) -> str:
        """The image format, as its extension without the dot (exr, png, ...)."""
        return self.pattern.suffix.lower().lstrip(".").replace("tiff", "tif")

    def missing(self) -> list[int]:
        """The numbers between the first and the last that have no file."""
        present = {number for number, _ in self.files}
        return [n for n in range(self.first, self.last + 1) if n not in present]


def is_sequence_input(path: Path) -> bool:
    """Whether IN names an image sequence: a folder, or a pattern or glob that is
    not the name of an existing file (a video may have brackets in its name)."""
    if path.is_dir():
        return True
    return not path.is_file() and bool(_PRINTF.search(path.name) or _GLOB.search(path.name))


def is_sequence_output(path: Path) -> bool:
    """Whether OUT is an image sequence pattern (shot/frame_%06d.png)."""
    return bool(_PRINTF.search(path.name))


def parse_pattern(
    path: Path, *, what: str, error: type[ClipswapError] = OutputPathError
) -> SequencePattern:
    """The pattern of a printf-style `path`; `what` and `error` say which path
    it is in the error line ("output", OutputPathError).

    Raises:
        `error`: not one %d or %0Nd in the file name, or not an image format read here.
    """
    tokens = list(_PRINTF.finditer(path.name))
    token = tokens[0] if len(tokens) == 1 else None
    if token is None or not re.fullmatch(r"%(0\d+)?d", token.group(0)) or path.name.count("%") > 1:
        raise error(f"{what} {path}: put one %d or %0Nd (such as %06d) in the file name")
    suffix = path.name[token.end() :]
    if not suffix.lower().endswith(SEQUENCE_SUFFIXES):
        raise error(
            f"{what} {path}: image sequences are {', '.join(SEQUENCE_SUFFIXES)} files; "
            "end the pattern with one of those"
        )
    width = int(token.group(0)[1:-1] or 0)
    return SequencePattern(path.parent, path.name[: token.start()], width, suffix)


def scan_sequence(path: Path) -> ImageSequence:
    """The sequence IN names (see the module's docstring).

    Raises:
        InputNotFoundError: the folder does not exist, or no file matches.
        UnreadableInputError: a folder or glob holds no numbered sequence, or more than one.
    """
    if path.is_dir():
        return _one_sequence(path, sorted(path.iterdir()))
    if not path.parent.is_dir():
        raise InputNotFoundError(f"input sequence {path}: folder {path.parent} does not exist")
    if _PRINTF.search(path.name):
        pattern = parse_pattern(path, what="input sequence", error=UnreadableInputError)
        files = _named(pattern, sorted(path.parent.iterdir()))
        if not files:
            raise InputNotFoundError(f"input sequence {path} matches no file")
        return ImageSequence(pattern, files)
    matches = sorted(path.parent.glob(path.name))
    if not matches:
        raise InputNotFoundError(f"input sequence {path} matches no file")
    return _one_sequence(path, matches)


def describe_numbers(numbers: list[int]) -> str:
    """`1005, 1017-1018`: ascending numbers as runs."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _named(pattern: SequencePattern, entries: list[Path]) -> tuple[tuple[int, Path], ...]:
    found = ((pattern.number_of(entry.name), entry) for entry in entries if entry.is_file())
    return tuple(sorted((number, entry) for number, entry in found if number is not None))


def _one_sequence(source: Path, entries: list[Path]) -> ImageSequence:
    """The one numbered sequence among `entries`, the files of folder or glob
    `source` (hidden files and other kinds of file, such as an audio.wav beside
    the frames, are not frames)."""
    groups: dict[tuple[str, str], list[tuple[str, Path]]] = {}
    for entry in entries:
        match = _LAST_NUMBER.search(entry.name)
        image = entry.name.lower().endswith(SEQUENCE_SUFFIXES) and not entry.name.startswith(".")
        if match is not None and image and entry.is_file():
            key = (entry.name[: match.start()], entry.name[match.end() :])
            groups.setdefault(key, []).append((match.group(1), entry))
    folder = source.is_dir()
    if not groups:
        kind = ", ".join(SEQUENCE_SUFFIXES)
        where = f"input {source} is a folder with" if folder else f"input sequence {source} matches"
        raise UnreadableInputError(
            f"{where} no numbered image sequence ({kind} files named like frame_0001.exr)"
        )
    patterns = [_pattern(key, numbered) for key, numbered in groups.items()]
    if len(patterns) > 1:
        where = f"input folder {source} holds" if folder else f"input sequence {source} matches"
        names = ", ".join(sorted(pattern.name for pattern in patterns)[:3])
        raise UnreadableInputError(
            f"{where} {len(patterns)} numbered sequences ({names}); name one with a "
            f"pattern such as {patterns[0]}"
        )
    numbered = next(iter(groups.values()))
    return ImageSequence(patterns[0], _named(patterns[0], [entry for _, entry in numbered]))


def _pattern(key: tuple[str, str], numbered: list[tuple[str, Path]]) -> SequencePattern:
    """The pattern of one group of names: zero-padded when any number is
    (0999, 1000), or when all have one length; else %d (998, 999, 1000).

    Raises:
        UnreadableInputError: the numbers are padded to different widths.
    """
    padded = {len(digits) for digits, _ in numbered if len(digits) > 1 and digits[0] == "0"}
    lengths = {len(digits) for digits, _ in numbered}
    width = min(padded) if padded else min(lengths) if len(lengths) == 1 else 0
    pattern = SequencePattern(numbered[0][1].parent, key[0], width, key[1])
    odd = sorted(entry.name for _, entry in numbered if pattern.number_of(entry.name) is None)
    if odd:
        raise UnreadableInputError(
            f"input sequence {pattern}: its numbers are padded to different widths "
            f"({', '.join(odd[:3])}); rename them to one width"
        )
    return pattern


__all__ = [
    "SEQUENCE_SUFFIXES",
    "ImageSequence",
    "SequencePattern",
    "describe_numbers",
    "is_sequence_input",
    "is_sequence_output",
    "parse_pattern",
    "scan_sequence",
]
