"""The small commands: --version, doctor, probe, --print-config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipswap_video import __version__
from media_fixtures import write_clip


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from clipswap_video.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"clipswap-video {__version__}"


def test_doctor_json(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ClipSwap.h5").write_bytes(b"")
    from clipswap_video.cli import main

    assert main(["doctor", "--json", "--weights", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clipswap_video"] == __version__
    assert report["encoders"]["libx264"] is True
    assert report["weights"]["clipswap_256.official"] == str(tmp_path / "ClipSwap.h5")
    assert report["weights"]["arcface_res50.official"] is None
    assert set(report["torch"]) >= {"version", "cuda", "devices"}
    (tmp_path / "GFPGANv1.4.pth").write_bytes(b"")
    assert main(["doctor", "--json", "--weights", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights"]["gfpgan.v1_4"] == str(tmp_path / "GFPGANv1.4.pth")
    assert report["enhancers"]["spandrel"]  # the enhancers' architectures are installed


def test_doctor_table(cli) -> None:  # type: ignore[no-untyped-def]
    code, err = cli("doctor")
    assert code == 0 and "libx264" in err and "weights" in err


def test_probe_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from clipswap_video.cli import main

    clip = write_clip(tmp_path / "in.mp4", frames=12, audio=["aac"], rotation=90)
    assert main(["probe", str(clip), "--json", "--count-frames"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["video"]["frame_count"] == 12 and info["video"]["rotation"] == 90
    assert [s["kind"] for s in info["streams"]] == ["video", "audio"]


def test_print_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, source_image: Path
) -> None:
    from clipswap_video.cli import main

    args = ["--crf", "22", "--set", "video.preset=slow", "--print-config"]
    code = main([str(source_image), "in.mp4", "out.mp4", *args])
    assert code == 0
    out = capsys.readouterr().out
    assert "crf = 22" in out and 'preset = "slow"' in out
