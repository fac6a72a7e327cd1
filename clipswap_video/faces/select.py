"""Which faces of a frame get swapped: all, the largest, or those of a reference person.

`reference:` is the answer to "it swapped the wrong person": the faces whose
identity embedding is within the backend's same-person distance of any
reference image's face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clipswap_video.errors import ConfigValueError
from clipswap_video.faces.types import Embedding, Face, embedding_distance

if TYPE_CHECKING:  # the CLI checks --faces without loading OpenCV or the backends
    from clipswap_video.faces.detect import FaceDetector

SelectionMode = Literal["all", "largest", "reference"]

# A chosen "largest" face keeps its place until another is this much larger,
# so two faces of about the same size do not take turns frame by frame.
_LARGEST_HYSTERESIS = 1.2


@dataclass(frozen=True)
class FaceSelection:
    """A parsed `--faces` value."""

    mode: SelectionMode
    references: tuple[Path, ...] = ()


def parse_selection(text: str) -> FaceSelection:
    """`all`, `largest` or `reference:IMG[,IMG...]` -> FaceSelection."""
    mode, _, rest = text.strip().partition(":")
    if mode in ("all", "largest") and not rest:
        return FaceSelection(mode)  # type: ignore[arg-type]
    if mode == "reference":
        paths = tuple(Path(part) for part in rest.split(",") if part.strip())
        if paths:
            return FaceSelection("reference", paths)
        raise ConfigValueError("--faces reference: needs image paths, e.g. reference:actor.jpg")
    raise ConfigValueError(f"--faces {text!r} is not one of: all, largest, reference:IMG[,IMG]")


class FaceSelector:
    """Applies a selection to the faces of each frame of one video."""

    def __init__(
        self, selection: FaceSelection, detector: FaceDetector, source_face: int | str = 0
    ) -> None:
        from clipswap_video.faces.identity import source_identity

        self.selection = selection
        self.match_distance = detector.match_distance
        self.references: list[Embedding] = []
        for path in selection.references:
            reference = source_identity(detector, [path], source_face, what="reference image")
            self.references.append(reference.embedding)
        self._largest_id: int | None = None

    def select(self, faces: Sequence[Face]) -> list[Face]:
        """The faces of one frame that should be swapped."""
        if not faces or self.selection.mode == "all":
            return list(faces)
        if self.selection.mode == "largest":
            return [self._largest(faces)]
        return [face for face in faces if self.matches(face)]

    def matches(self, face: Face) -> bool:
        """Whether `face` is the reference person (False when it has no embedding)."""
        if face.embedding is None:
            return False
        distance = min(embedding_distance(face.embedding, ref) for ref in self.references)
        return distance < self.match_distance

    def _largest(self, faces: Sequence[Face]) -> Face:
        largest = max(faces, key=lambda face: face.size)
        if self._largest_id is None:  # first frame, or faces of a photo (no track ids)
            self._largest_id = largest.track_id
            return largest
        current = next((f for f in faces if f.track_id == self._largest_id), None)
        if current is not None and largest.size < current.size * _LARGEST_HYSTERESIS:
            return current
        self._largest_id = largest.track_id
        return largest


__all__ = ["FaceSelection", "FaceSelector", "SelectionMode", "parse_selection"]
