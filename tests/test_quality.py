"""The quality figures a batch records per video, measured while it is swapped."""

from __future__ import annotations

import base64
import html
import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import CliRun

from clipswap_video.config_sections import BatchSettings
from clipswap_video.errors import ExitCode
from clipswap_video.faces import Face
from clipswap_video.swap.quality import QualityLog
from media_fixtures import write_clip

SOURCE = np.array([1.0, 0.0], np.float32)


def _face(embedding_x: float) -> Face:
    box = np.array([10, 10, 30, 30], np.float32)
    return Face(box=box, score=0.9, landmarks_5=np.zeros((5, 2), np.float32)).with_(
        embedding=np.array([embedding_x, np.sqrt(1 - embedding_x**2)], np.float32)
    )


def _four_seconds(settings: BatchSettings) -> QualityLog:
    """4 s at 4 frames a second: the face flickers 10x more in second 2, the
    swapped face is another person in seconds 1 and 2, none is swapped in 3."""
    identity_by_second = {0: 1.0, 1: 0.2, 2: 0.2}  # cosine with the source
    detector = SimpleNamespace(
        match_distance=0.4,
        embed=lambda image, faces: [_face(identity_by_second[int(image[0, 0, 0])])],
    )
    log = QualityLog(detector, SOURCE, settings)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    for index in range(16):
        second = index // 4
        before = np.zeros((40, 40, 3), np.uint8)
        before[10:30, 10:30] = rng.integers(100, 110, (20, 20, 3))  # the input changes a little
        after = before.copy()
        if second == 2:
            after[10:30, 10:30] = rng.integers(0, 255, (20, 20, 3))
        before[0, 0, 0] = after[0, 0, 0] = second  # tells the fake detector the second
        faces = [] if second == 3 else [_face(1.0)]
        log.observe(index / 4, before, after, faces, selected=1)
    return log


def test_per_second_figures_and_flagged_ranges() -> None:
    figures = _four_seconds(BatchSettings()).as_json()
    assert figures["frames"] == [4, 4, 4, 4]
    assert figures["swapped"] == [4, 4, 4, 0] and figures["missed"] == [0, 0, 0, 4]
    flicker = figures["flicker"]
    assert flicker[0] == flicker[1] == 1.0 and flicker[2] > 10 and flicker[3] is None
    assert figures["identity"] == [0.0, 0.8, 0.8, None]
    assert figures["flags"] == [
        {"start_s": 1, "end_s": 3, "why": "identity drift"},
        {"start_s": 2, "end_s": 3, "why": "flicker jump"},
    ]
    worst = figures["worst"]  # the face at the worst identity moment, as PNGs
    assert (worst["why"], worst["at_s"]) == ("identity", 1.0)
    for picture in (worst["input"], worst["output"]):
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(picture), np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape[0] == 112
    assert json.loads(json.dumps(figures)) == figures  # JSON-ready throughout
    # The thresholds are settings: a looser identity limit and a larger jump clear both.
    loose = BatchSettings(qc_identity_distance=0.9, qc_flicker_jump=50.0)
    assert _four_seconds(loose).as_json()["flags"] == []


HOSTILE = "<img src=x onerror=alert(1)>.mp4"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, source_image: Path) -> Path:
    """One batch, with its report page, for the tests below: a moving face (a.mp4,
    1.2 s at 10 fps), a faceless clip named like markup, and a broken file."""
    from face_fixtures import astronaut_actor, line_path, write_actor_clip

    from clipswap_video.cli import main

    folder = tmp_path_factory.mktemp("batch")
    inputs, outputs = folder / "in", folder / "out"
    inputs.mkdir()
    path = line_path((300, 180), (330, 180), 1.2, 1.25)
    write_actor_clip(inputs / "a.mp4", [astronaut_actor(path)], seconds=1.2, fps=10)
    write_clip(inputs / HOSTILE, frames=10)
    (inputs / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated <b>bold</b>")
    page = folder / "report.html"
    swap = ["--swapper", "classic", "--workers", "1", "--report", str(page), "-q"]
    code = main(["batch", str(source_image), str(inputs), str(outputs), *swap])
    assert code == ExitCode.JOBS_FAILED  # the broken file
    return folder


def test_a_batch_records_the_quality_of_each_video(batch: Path) -> None:
    report = json.loads((batch / "out" / "clipswap-batch.json").read_text())
    rows = {Path(job["input"]).name: job for job in report["jobs"]}
    quality = rows["a.mp4"]["quality"]
    assert quality["frames"] == [10, 2]
    assert sum(quality["swapped"]) == rows["a.mp4"]["frames_swapped"]
    assert all(value is not None for value in quality["identity"])  # one a second
    assert quality["flicker"][0] is not None and quality["worst"]["input"]
    assert rows[HOSTILE]["quality"]["swapped"] == [0]  # looked for, none found
    broken = rows["broken.mp4"]
    assert broken["state"] == "failed" and broken.get("quality") is None


def test_the_report_page_is_self_contained_and_escapes_every_name(batch: Path) -> None:
    text = (batch / "report.html").read_text()
    assert HOSTILE not in text and html.escape(HOSTILE) in text  # shown as text
    assert "<script" not in text and "http://" not in text.replace(_SVG_NAMESPACE, "")
    assert text.count("<tr>") == 4  # the header and a row per video
    assert text.count('src="data:image/png;base64,') >= 3  # source, input and output faces
    assert "<svg" in text and "<polyline" in text
    assert "failed" in text and "identity distance" in text


_SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def test_report_paths_are_checked_before_any_job(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_clip(inputs / "a.mp4", frames=5)
    (tmp_path / "file").write_text("a file, not a folder")
    nowhere = tmp_path / "file" / "r.html"
    code, err = cli("batch", source_image, inputs, tmp_path / "out", "--report", nowhere)
    assert code == ExitCode.OUTPUT_UNWRITABLE and "cannot create" in err
    code, err = cli("batch", source_image, inputs, tmp_path / "out", "--report", tmp_path)
    assert code == ExitCode.BAD_OUTPUT_PATH and "is a folder" in err
    assert not (tmp_path / "out").exists()
    # A report in the output folder the batch makes: the folder is made for it.
    inside = tmp_path / "out" / "report.html"
    code, err = cli(
        "batch", source_image, inputs, tmp_path / "out", "--swapper", "none", "--report", inside
    )
    assert code == ExitCode.OK and inside.is_file(), err


@pytest.mark.slow
def test_the_report_renders_in_a_real_browser(batch: Path, tmp_path: Path) -> None:
    """Headless Chromium (Debian's package, which `make test` installs): the page's
    DOM holds the hostile name as text and no element it would have made, every
    picture decodes, and a screenshot is drawn."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium is not None, "chromium is missing: `make test` installs it with apt-get"
    page = batch / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "Batch report" in dom and html.escape(HOSTILE) in dom
    assert 'src="x"' not in dom  # the name made no element
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, *flags, "--window-size=1400,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[:2] == (900, 1400)
    assert picture.std() > 20  # drawn: text, pictures and plots, not a blank page
