"""How much of a video got a swapped face, and, when none did, why.

The swap stage counts; the counts live here, below swap, so the CLI and the
batch report can word them without loading the swap machinery.

A job that swapped nothing still writes a valid video (the input, re-encoded),
so "wrote out.mp4" alone would hide that it did nothing useful: these counts
go to the job's last line, and the reason to a warning (or, with
`faces.strict`, to the error that fails the job).
"""

from __future__ import annotations

from dataclasses import dataclass

from clipswap_video.config_sections import FaceSettings


@dataclass
class FaceCoverage:
    """Frame counts of one job; a frame counts once however many faces it has."""

    frames: int = 0
    frames_with_faces: int = 0
    """The detector found at least one face (of at least faces.min_size)."""
    frames_selected: int = 0
    """faces.select chose at least one of them."""
    frames_swapped: int = 0
    """At least one face was swapped."""
    frames_missed: int = 0
    """A chosen face was left unswapped."""
    faces_swapped: int = 0

    def count(self, *, found: int, selected: int, swapped: int) -> None:
        """Adds one frame: faces found, chosen and swapped in it."""
        self.frames += 1
        self.frames_with_faces += found > 0
        self.frames_selected += selected > 0
        self.frames_swapped += swapped > 0
        self.frames_missed += swapped < selected
        self.faces_swapped += swapped

    def summary(self) -> str:
        return coverage_summary(self.frames_swapped, self.frames_missed)

    def nothing_swapped(self, faces: FaceSettings) -> str | None:
        """Why no frame got a swapped face; None when one did."""
        if self.frames_swapped:
            return None
        if not self.frames:
            return "the video has no frames"
        if not self.frames_with_faces:
            return f"no face was found in any frame; {_detector_hint(faces)}"
        if not self.frames_selected:
            chose = (
                "no face matched the reference photos"
                if faces.select.startswith("reference:")
                else f"faces.select = {faces.select!r} chose none of them"
            )
            return f"faces were found in {self.frames_with_faces} frames, but {chose}"
        return (
            f"faces were chosen in {self.frames_selected} frames, but all were turned further "
            f"than faces.max_yaw = {faces.max_yaw:g} degrees"
        )

    def as_json(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "frames_selected": self.frames_selected,
            "frames_swapped": self.frames_swapped,
            "frames_missed": self.frames_missed,
            "faces_swapped": self.faces_swapped,
        }


def coverage_summary(frames_swapped: int, frames_missed: int) -> str:
    """`faces swapped in 288 (12 with a face not swapped)`: a job's last line says it."""
    missed = f" ({frames_missed} with a face not swapped)" if frames_missed else ""
    return f"faces swapped in {frames_swapped}{missed}"


def _detector_hint(faces: FaceSettings) -> str:
    if faces.detector == "dlib":
        return (
            "dlib's HOG detector misses faces under about 80 px tall at its detection "
            f"scale (faces.detect_size = {faces.detect_size}); faces.hog_upsample = 1 finds "
            "faces half that size, more slowly"
        )
    return (
        f"faces under faces.min_size = {faces.min_size} px or scored under the "
        f"detector's threshold (faces.min_score = {faces.min_score}; 0 = its own) are left out"
    )


__all__ = ["FaceCoverage", "coverage_summary"]
