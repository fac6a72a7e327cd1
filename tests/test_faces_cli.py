"""`clipswap-video faces`: what the analysis sees, as a table, JSON and a preview."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from face_fixtures import (
    T1_IMAGE,
    astronaut,
    astronaut_actor,
    grace_actor,
    grace_hopper,
    line_path,
    write_actor_clip,
)
from PIL import Image

from clipswap_video.cli import main
from clipswap_video.config_sections import FaceSettings
from clipswap_video.errors import ExitCode
from clipswap_video.faces import create_detector
from media_fixtures import write_clip


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_photo_json(capsys: pytest.CaptureFixture[str], source_image: Path) -> None:
    code, out, _ = _run(capsys, "faces", source_image, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["kind"] == "image" and (report["width"], report["height"]) == (512, 600)
    [face] = report["frames"][0]["faces"]
    assert face["selected"] and len(face["landmarks_5"]) == 5 and face["score"] > 0.5


def test_group_photo_table_and_preview(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    preview = tmp_path / "group.png"
    code, _, err = _run(capsys, "faces", T1_IMAGE, "--preview", preview, "--faces", "largest")
    assert code == 0
    rows = [line for line in err.splitlines() if " yes " in line or " no " in line]
    assert len(rows) == 6
    [chosen] = [row for row in rows if " yes " in row]
    sizes = [int(row.split("│")[4]) for row in rows]
    assert int(chosen.split("│")[4]) == max(sizes)  # "largest" takes the largest face
    with Image.open(preview) as picture:
        assert picture.size == (480, 332)  # 1280 x 886 scaled to 480 wide
        pixels = np.asarray(picture.convert("RGB"))
    assert ((pixels == [40, 220, 40]).all(-1)).sum() > 50  # a green box (the swapped face)
    assert ((pixels == [230, 40, 40]).all(-1)).sum() > 200  # red boxes (the others)
    assert not list(tmp_path.glob("*.partial*"))


def test_video_json_tracks_and_contact_sheet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clip = tmp_path / "walk.mp4"
    write_actor_clip(clip, [astronaut_actor(line_path((150, 180), (490, 180), 1, 1.25))], seconds=1)
    preview = tmp_path / "sheet.png"
    code, out, _ = _run(capsys, "faces", clip, "--json", "--preview", preview)
    assert code == 0
    report = json.loads(out)
    assert report["kind"] == "video" and len(report["frames"]) == 30
    assert [entry["index"] for entry in report["frames"]] == list(range(30))
    [track] = report["tracks"]
    mean_size = track.pop("mean_size")
    assert track == {"track_id": 0, "first": 0, "last": 29, "frames": 30, "selected_frames": 30}
    [still] = create_detector(FaceSettings()).detect(astronaut())
    assert mean_size == pytest.approx(still.size * 1.25, rel=0.1)  # the still drawn at 1.25
    sizes = [face["size"] for entry in report["frames"] for face in entry["faces"]]
    assert mean_size == pytest.approx(sum(sizes) / len(sizes), abs=0.05)
    with Image.open(preview) as picture:
        assert picture.size == (1440, 540)  # 6 frames in 2 rows of 3, 480 x 270 each


def test_photo_without_a_face_reports_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(wall)
    code, out, _ = _run(capsys, "faces", wall, "--json")
    assert code == 0 and json.loads(out)["frames"][0]["faces"] == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--faces", "biggest"], ExitCode.BAD_CONFIG_VALUE, "is not one of: all, largest"),
        (["--faces", "reference:nobody.jpg"], ExitCode.INPUT_MISSING, "reference image nobody.jpg"),
        (["--preview", "out.gif"], ExitCode.BAD_OUTPUT_PATH, "must end in .png or .jpg"),
        (["--preview", "no/such/dir/p.png"], ExitCode.BAD_OUTPUT_PATH, "is not a folder"),
        (["--set", "faces.detect_every=0"], ExitCode.BAD_CONFIG_VALUE, "out of range"),
    ],
)
def test_bad_arguments_are_one_line(
    cli, source_image: Path, args: list[str], code: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    exit_code, err = cli("faces", source_image, *args)
    assert exit_code == code
    assert message in err and err.count("\n") == 1


def test_missing_input_and_swap_checks_faces_flag(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("faces", tmp_path / "none.mp4")[0] == ExitCode.INPUT_MISSING
    code, err = cli(source_image, tmp_path / "in.mp4", tmp_path / "o.mp4", "--faces", "most")
    assert code == ExitCode.BAD_CONFIG_VALUE and "--faces 'most'" in err


def test_insightface_without_weights_names_the_files(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, err = cli("faces", source_image, "--detector", "insightface", "--weights", tmp_path)
    assert code == ExitCode.MISSING_WEIGHTS
    assert "det_10g.onnx" in err and "buffalo_l" in err and err.count("\n") == 1


def test_reference_picks_one_person_in_a_video(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clip = tmp_path / "two.mp4"
    actors = [
        astronaut_actor(line_path((150, 180), (250, 180), 1, 1.25)),
        grace_actor(line_path((480, 180), (400, 180), 1, 0.5)),
    ]
    write_actor_clip(clip, actors, seconds=1)
    reference = tmp_path / "grace.png"
    Image.fromarray(grace_hopper()).save(reference)
    code, out, _ = _run(capsys, "faces", clip, "--json", "--faces", f"reference:{reference}")
    assert code == 0
    for frame in json.loads(out)["frames"]:
        assert len(frame["faces"]) == 2
        [chosen] = [face for face in frame["faces"] if face["selected"]]
        assert chosen["box"][0] > 320  # Grace, on the right; never the astronaut


def test_damaged_video_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mp4", frames=12)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the moov index is at the end
    code, err = cli("faces", cut)
    assert code == ExitCode.CORRUPT_INPUT
    assert err.startswith("error:") and "truncated or corrupt" in err and err.count("\n") == 1


def test_garbage_video_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(20000))
    code, err = cli("faces", garbage)
    assert code == ExitCode.INPUT_UNREADABLE
    assert err.startswith("error:") and "not a media file" in err and err.count("\n") == 1
