"""Where weight files are found: the flat names and the official repositories'
sub-folders, in any letter case; one folder holding two files for one model is
one error line; a missing one names where it was looked for. Only discovery:
the files are empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipswap_video.errors import AmbiguousWeightsError, ExitCode, MissingWeightsError
from clipswap_video.weights import ENV_VAR, WeightEntry, find_weight, load_manifest, locate
from media_fixtures import write_clip

OFFICIAL_TREES = {
    "issue": [
        "pretrained_ckpts/clipswap/clipswap.h5",
        "arcface_model/ArcFace-Res50.h5",
        "retinaface/RetinaFace-Res50.h5",
    ],
    "clipswap readme": [
        "pretrained_ckpts/clipswap/ClipSwap.h5",
        "pretrained_ckpts/arcface/ArcFace-Res50.h5",
        "pretrained_ckpts/retinaface/RetinaFace-Res50.h5",
    ],
}
ROLES = ["clipswap_256.official", "arcface_res50.official", "retinaface_res50.official"]


def _entry(name: str) -> WeightEntry:
    return next(entry for entry in load_manifest() if entry.name == name)


def _touch(folder: Path, *relative: str) -> list[Path]:
    paths = [folder / name for name in relative]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return paths


def _case_sensitive(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "probe").write_bytes(b"")
    return not (folder / "PROBE").exists()


@pytest.mark.parametrize("tree", OFFICIAL_TREES)
def test_the_official_tree_is_found(tmp_path: Path, tree: str) -> None:
    relative = OFFICIAL_TREES[tree]
    for name, path, place in zip(ROLES, _touch(tmp_path, *relative), relative, strict=True):
        found = locate(_entry(name), tmp_path)
        assert found is not None and found.path == path
        assert found.location.casefold() == place.casefold()


def test_any_letter_case_on_every_component(tmp_path: Path) -> None:
    [generator, identity] = _touch(
        tmp_path, "Pretrained_Ckpts/ClipSwap/CLIPSWAP.H5", "arcface-res50.h5"
    )
    assert find_weight(_entry("clipswap_256.official"), tmp_path) == generator
    assert find_weight(_entry("arcface_res50.official"), tmp_path) == identity
    assert find_weight(_entry("retinaface_res50.official"), tmp_path) is None


def test_the_converted_file_is_preferred_in_a_sub_folder_too(tmp_path: Path) -> None:
    _touch(tmp_path, "pretrained_ckpts/clipswap/ClipSwap.h5")
    [converted] = _touch(tmp_path, "pretrained_ckpts/clipswap/clipswap.safetensors")
    found = locate(_entry("clipswap_256.official"), tmp_path)
    assert found is not None and found.path == converted and "(converted)" in found.why


def test_two_files_for_one_model_in_one_folder_is_one_line(tmp_path: Path) -> None:
    flat, nested = _touch(tmp_path, "ClipSwap.h5", "pretrained_ckpts/clipswap/clipswap.h5")
    with pytest.raises(AmbiguousWeightsError) as caught:
        find_weight(_entry("clipswap_256.official"), tmp_path)
    message = str(caught.value)
    assert str(flat) in message and str(nested) in message and "\n" not in message
    assert "remove or rename" in message and "--weights" in message
    assert caught.value.exit_code == ExitCode.AMBIGUOUS_WEIGHTS


def test_two_letter_cases_side_by_side_are_two_files(tmp_path: Path) -> None:
    if not _case_sensitive(tmp_path):
        pytest.skip("this filesystem cannot hold both names")
    _touch(tmp_path, "ArcFace-Res50.h5", "arcface-res50.h5")
    with pytest.raises(AmbiguousWeightsError, match="2 files for arcface_res50.official"):
        find_weight(_entry("arcface_res50.official"), tmp_path)


def test_a_link_to_the_same_file_is_one_file(tmp_path: Path) -> None:
    [nested] = _touch(tmp_path, "retinaface/RetinaFace-Res50.h5")
    (tmp_path / "RetinaFace-Res50.h5").symlink_to(nested)
    assert find_weight(_entry("retinaface_res50.official"), tmp_path) == (
        tmp_path / "RetinaFace-Res50.h5"
    )


def test_a_missing_model_names_where_it_looked(tmp_path: Path) -> None:
    from clipswap_video.faces.retinaface_backend import weights_path

    with pytest.raises(MissingWeightsError) as caught:
        weights_path(tmp_path / "mine")
    message = str(caught.value)
    assert (
        "RetinaFace-Res50.h5 or pretrained_ckpts/retinaface/RetinaFace-Res50.h5 or "
        f"retinaface/RetinaFace-Res50.h5 (any case) in {tmp_path / 'mine'}, weights"
    ) in message
    assert "\n" not in message


def test_the_first_folder_that_holds_it_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [nested] = _touch(tmp_path / "mine", "arcface_model/ArcFace-Res50.h5")
    _touch(tmp_path / "env", "ArcFace-Res50.h5", "arcface/ArcFace-Res50.h5")  # two, never read
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    found = locate(_entry("arcface_res50.official"), tmp_path / "mine")
    assert found is not None and found.path == nested
    assert found.why == f"--weights {tmp_path / 'mine'}, as arcface_model/ArcFace-Res50.h5"
    with pytest.raises(AmbiguousWeightsError, match=str(tmp_path / "env")):
        locate(_entry("arcface_res50.official"), tmp_path / "empty")


def test_manifest_paths_are_a_tuple() -> None:
    entry = _entry("facedancer_256.config_c_hq")
    assert entry.paths == ("model_zoo/FaceDancer_config_c_HQ.h5",)
    assert _entry("insightface.buffalo_l").paths == ()


# Through the command line ------------------------------------------------------------------


def test_weights_list_json_says_what_was_picked_and_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from clipswap_video.cli import main

    [generator] = _touch(tmp_path, "Pretrained_Ckpts/clipswap/ClipSwap.h5")
    _touch(tmp_path, "RetinaFace-Res50.h5", "retinaface/retinaface-res50.h5")
    assert main(["weights", "list", "--json", "--weights", str(tmp_path)]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    picked = rows["clipswap_256.official"]
    assert (picked["status"], picked["path"]) == ("found", str(generator))
    assert (picked["folder"], picked["origin"]) == (str(tmp_path), "--weights")
    assert picked["location"] == "pretrained_ckpts/clipswap/ClipSwap.h5"
    conflict = rows["retinaface_res50.official"]
    assert conflict["status"] == "conflict" and conflict["path"] is None
    assert "2 files for retinaface_res50.official" in conflict["why"]
    missing = rows["arcface_res50.official"]
    assert missing["status"] == "missing" and missing["why"].startswith("looked for ArcFace")


def test_weights_verify_fails_on_a_conflict(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _touch(tmp_path, "ClipSwap.h5", "clipswap/ClipSwap.h5")
    code, err = cli("weights", "verify", "--weights", tmp_path)
    last = err.splitlines()[-1]  # after the table, as for a hash mismatch
    assert code == ExitCode.AMBIGUOUS_WEIGHTS and last.startswith("error: ")
    assert "2 files for clipswap_256.official" in last


def test_a_swap_with_two_generators_in_one_folder_writes_nothing(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    source_image: Path,
) -> None:
    _touch(tmp_path / "w", "ClipSwap.h5", "pretrained_ckpts/clipswap/ClipSwap.h5")
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--weights", tmp_path / "w")
    assert code == ExitCode.AMBIGUOUS_WEIGHTS and err.count("\n") == 1
    assert "remove or rename" in err and "ClipSwap.h5" in err
    assert not (tmp_path / "out.mp4").exists()


def test_doctor_reports_the_conflict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from clipswap_video.cli import main

    _touch(tmp_path, "arcface/ArcFace-Res50.h5", "ARCFACE_MODEL/arcface-res50.H5")
    assert main(["doctor", "--json", "--weights", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights"]["arcface_res50.official"] is None
    assert "2 files" in report["weights_conflicts"]["arcface_res50.official"]


def test_fetch_refuses_to_add_a_second_copy(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _touch(tmp_path / "w", "model_zoo/FaceDancer_config_c_HQ.h5")
    url = "http://127.0.0.1:9/never-contacted"
    code, err = cli(
        "weights", "fetch", "facedancer_256.config_c_hq", "--url", url, "--weights", tmp_path / "w"
    )
    assert code == ExitCode.AMBIGUOUS_WEIGHTS and err.count("\n") == 1
    assert "already holds facedancer_256.config_c_hq" in err
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["model_zoo"]
