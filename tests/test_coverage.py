"""A job says how many frames got a swapped face, and a job that swapped none
says why: a warning, or with --strict-faces exit 17 and no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CliRun

from clipswap_video.cli import main
from clipswap_video.config import FaceSettings
from clipswap_video.demo import write_demo_media
from clipswap_video.errors import ExitCode
from clipswap_video.swap.coverage import FaceCoverage
from media_fixtures import write_clip


def _coverage(*frames: tuple[int, int, int]) -> FaceCoverage:
    coverage = FaceCoverage()
    for found, selected, swapped in frames:
        coverage.count(found=found, selected=selected, swapped=swapped)
    return coverage


def test_frames_are_counted_once_however_many_faces() -> None:
    coverage = _coverage((2, 2, 2), (1, 1, 0), (3, 1, 1), (0, 0, 0))
    assert coverage.as_json() == {
        "frames": 4,
        "frames_with_faces": 3,
        "frames_selected": 3,
        "frames_swapped": 2,
        "frames_missed": 1,
        "faces_swapped": 3,
    }
    assert coverage.summary() == "faces swapped in 2 (1 with a face not swapped)"
    assert _coverage((1, 1, 1)).summary() == "faces swapped in 1"
    assert coverage.nothing_swapped(FaceSettings()) is None


@pytest.mark.parametrize(
    ("frames", "faces", "reason"),
    [
        ((), FaceSettings(), "the video has no frames"),
        (((0, 0, 0),), FaceSettings(), "no face was found in any frame; dlib's HOG detector"),
        (((0, 0, 0),), FaceSettings(detector="retinaface"), "faces under faces.min_size = 24"),
        (
            ((2, 0, 0), (1, 0, 0)),
            FaceSettings(select="reference:a.jpg"),
            "faces were found in 2 frames, but no face matched the reference photos",
        ),
        (((1, 0, 0),), FaceSettings(select="largest"), "faces.select = 'largest' chose none"),
        (((1, 1, 0),), FaceSettings(), "faces were chosen in 1 frames, but none could be swapped"),
    ],
)
def test_why_nothing_was_swapped(
    frames: tuple[tuple[int, int, int], ...], faces: FaceSettings, reason: str
) -> None:
    assert reason in (_coverage(*frames).nothing_swapped(faces) or "")


@pytest.fixture
def faceless_clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "plain.mp4", frames=6)


def test_a_job_without_a_face_warns_and_says_so(
    cli: CliRun, source_image: Path, faceless_clip: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    code, err = cli(source_image, faceless_clip, output, "--swapper", "classic")
    assert code == ExitCode.OK and output.is_file()
    assert "warning: no face was swapped: no face was found in any frame" in err
    assert f"wrote {output}: 6 frames, faces swapped in 0, in " in err


def test_strict_faces_fails_and_writes_nothing(
    cli: CliRun, source_image: Path, faceless_clip: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    code, err = cli(source_image, faceless_clip, output, "--swapper", "classic", "--strict-faces")
    assert code == ExitCode.NOTHING_SWAPPED == 17
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [err.splitlines()[-1]]  # one line, the last
    assert errors[0].startswith("error: no face was swapped: no face was found in any frame")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plain.mp4"]  # no partial either


@pytest.mark.slow
def test_evaluate_measures_coverage_from_the_files(
    cli: CliRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-encode changes no face: coverage 0 of the frames with a face (the
    demo's swap reaches >= 0.95: tests/test_swap.py)."""
    media = write_demo_media(tmp_path, seconds=1, width=640, height=360, fps=30)
    untouched = tmp_path / "none.mp4"
    assert cli(media.source_image, media.video, untouched, "--swapper", "none", "-q")[0] == 0
    assert (
        main(["evaluate", str(media.source_image), str(media.video), str(untouched), "--json"]) == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["frames_with_faces"] >= 25 and metrics["frames_swapped"] == 0
    assert metrics["coverage"] == 0.0
