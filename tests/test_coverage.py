"""A job says how many frames got a swapped face, and a job that swapped none
says why: a warning, or with --strict-faces exit 17 and no output."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import CliRun

from clipswap_video.batch.jobs import JobOutcome, VideoJob
from clipswap_video.batch.manifest import InputIdentity, Manifest
from clipswap_video.cli import main
from clipswap_video.config_sections import FaceSettings
from clipswap_video.demo import write_demo_media
from clipswap_video.errors import ExitCode
from clipswap_video.faces.coverage import FaceCoverage
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
        (((0, 0, 0),), FaceSettings(detector="dlib"), "no face was found in any frame; dlib's HOG"),
        (((0, 0, 0),), FaceSettings(), "faces under faces.min_size = 24"),
        (
            ((2, 0, 0), (1, 0, 0)),
            FaceSettings(select="reference:a.jpg"),
            "faces were found in 2 frames, but no face matched the reference photos",
        ),
        (((1, 0, 0),), FaceSettings(select="largest"), "faces.select = 'largest' chose none"),
        (
            ((1, 1, 0),),
            FaceSettings(),
            "faces were chosen in 1 frames, but all were turned further than faces.max_yaw = 70",
        ),
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


@pytest.mark.slow
def test_batch_rows_and_report_carry_the_coverage(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    """A face clip and a faceless one, with --strict-faces: the first is done with
    its frames counted, the second fails with exit 17 and leaves no output."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    media = write_demo_media(tmp_path / "demo", seconds=1, width=640, height=360, fps=30)
    inputs.mkdir()
    shutil.copy(media.video, inputs / "face.mp4")
    write_clip(inputs / "plain.mp4", frames=6)
    code, err = cli(
        "batch",
        media.source_image,
        inputs,
        outputs,
        "--swapper",
        "classic",
        "--workers",
        "1",
        "--strict-faces",
    )
    assert code == ExitCode.JOBS_FAILED, err
    assert f"{outputs / 'face.mp4'}: 30 frames, faces swapped in 30, in " in " ".join(err.split())
    report = json.loads((outputs / "clipswap-batch.json").read_text())
    jobs = {Path(job["output"]).name: job for job in report["jobs"]}
    assert (jobs["face.mp4"]["state"], jobs["face.mp4"]["frames_swapped"]) == ("done", 30)
    assert jobs["face.mp4"]["frames_missed"] == 0
    plain = jobs["plain.mp4"]
    assert (plain["state"], plain["exit_code"]) == ("failed", ExitCode.NOTHING_SWAPPED)
    assert plain["error"].startswith("no face was swapped: no face was found in any frame")
    assert not (outputs / "plain.mp4").exists()


def test_an_older_manifest_gains_the_coverage_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the jobs table as the first manifests made it
        db.execute(
            "CREATE TABLE jobs (output TEXT PRIMARY KEY, input TEXT NOT NULL, "
            "sources TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
            "input_size INTEGER NOT NULL, input_mtime_ns INTEGER NOT NULL, "
            "input_sha256 TEXT NOT NULL, settings TEXT NOT NULL, device TEXT, frames INTEGER, "
            "queued_at REAL, started_at REAL, finished_at REAL, elapsed_s REAL, wall_s REAL, "
            "error TEXT, exit_code INTEGER)"
        )
    db.close()
    manifest = Manifest(path)
    output = tmp_path / "a.mp4"
    manifest.queue(output, tmp_path / "in.mp4", [], InputIdentity(1, 2, "x"), "")
    coverage = {"frames_swapped": 7, "frames_missed": 1}
    job = VideoJob((), tmp_path / "in.mp4", output)
    manifest.finish(JobOutcome(job, "cpu", frames=9, elapsed_s=1.0, coverage=coverage))
    record = manifest.record(output)
    manifest.close()
    assert record is not None and (record["frames_swapped"], record["frames_missed"]) == (7, 1)
