"""conftest.py's autouse fixture: the weights, working directory and caches of the
machine running the tests never reach a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants  # imported before the fixture runs, as other tests do
import pytest
from huggingface_hub import try_to_load_from_cache

from clipswap_video.swap import resolve_swapper
from clipswap_video.weights import ENV_VAR

TESTS = Path(__file__).parent
# A cached open_clip pretrained tag (ViT-B-32 laion2b_s34b_b79k), as models/clip.py looks it up.
CLIP_REPO, CLIP_FILE = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors"
# Tests that fail when a machine's weights leak in (auto picks clipswap, doctor finds ArcFace).
LEAKY_TESTS = [
    f"{TESTS / 'test_commands.py'}::test_doctor_json",
    f"{TESTS / 'test_cli_errors.py'}::test_ok_run_prints_summary",
]


def _poisoned_machine(folder: Path) -> tuple[Path, Path, Path]:
    """A user's machine: stand-ins for the ClipSwap weights in a `$CLIPSWAP_WEIGHTS`
    folder and in `./weights` of a working directory, and a CLIP checkpoint in the
    home's Hugging Face cache. Returns (weights folder, working directory, home)."""
    weights, cwd, home = folder / "env_weights", folder / "cwd", folder / "home"
    for directory in (weights, cwd / "weights"):
        directory.mkdir(parents=True)
        for name in ("ClipSwap.h5", "ArcFace-Res50.h5"):
            (directory / name).write_bytes(b"not a model")
    repo = home / ".cache" / "huggingface" / "hub" / f"models--{CLIP_REPO.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / CLIP_FILE).write_bytes(b"not a model")
    return weights, cwd, home


def test_each_test_starts_on_a_fresh_machine(
    isolated_from_the_machine: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = isolated_from_the_machine
    assert ENV_VAR not in os.environ
    assert Path.cwd() != tmp_path and list(Path.cwd().iterdir()) == []
    assert Path.home() == home and home.is_relative_to(tmp_path_factory.getbasetemp())
    for name in ("XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME"):
        assert Path(os.environ[name]).is_relative_to(home), name
    assert Path(huggingface_hub.constants.HF_HUB_CACHE).is_relative_to(home)
    assert resolve_swapper("auto", None)[0] == "classic"
    assert try_to_load_from_cache(CLIP_REPO, CLIP_FILE) is None


def test_the_poison_would_change_the_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the fixture each part of the poisoned machine changes what a test sees."""
    weights, cwd, home = _poisoned_machine(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(weights))
    assert resolve_swapper("auto", None) == ("clipswap", None)
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.chdir(cwd)
    assert resolve_swapper("auto", None) == ("clipswap", None)
    hub = home / ".cache" / "huggingface" / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    assert try_to_load_from_cache(CLIP_REPO, CLIP_FILE) is not None


@pytest.mark.slow
def test_tests_pass_on_a_poisoned_machine(tmp_path: Path) -> None:
    """The tests that weights on the machine would break pass in a pytest run started
    with the poisoned environment, working directory and home (~15 s: a fresh
    interpreter imports torch)."""
    weights, cwd, home = _poisoned_machine(tmp_path)
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME")
    }
    environment.update({ENV_VAR: str(weights), "HOME": str(home)})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LEAKY_TESTS]
    done = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert sorted(path.name for path in cwd.iterdir()) == ["weights"]  # nothing written there
