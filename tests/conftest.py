"""Shared fixtures: every test isolated from the machine, a real face photo and
an in-process CLI runner."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

# xdist's workers share the machine's cores: one OpenMP/BLAS thread each (set
# before torch and numpy load), or their threads spin against each other's
# (a quarter of the wall time of a two-worker run here). The CLI processes the
# tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib.cbook  # noqa: E402 (after the thread setting)
import pytest  # noqa: E402

from clipswap_video.cli import main  # noqa: E402
from clipswap_video.weights import ENV_VAR  # noqa: E402

CliRun = Callable[..., tuple[int, str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`cuda` tests are skipped on a machine without a CUDA GPU (CI, this project's
    CPU machines); `clipswap-video gpu-check` runs them where there is one."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


# Variables that move a cache away from $HOME/$XDG_CACHE_HOME: removed, so the
# temporary home below is the only place a cache can be found.
CACHE_OVERRIDES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the whole session: a Ray driver started twice looks for the
    token its first start wrote to ~/.ray, and fails under another home."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def isolated_from_the_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> Path:
    """Every test runs as on a fresh machine; returns the home folder.

    No `$CLIPSWAP_WEIGHTS`, a working directory of its own (so `./weights`, which
    the README tells users to fill, is empty) and a temporary home with empty
    cache folders (open_clip, torch and Hugging Face read `~/.cache`).
    Subprocesses inherit it. The working directory is not `tmp_path`: tests list
    that folder.
    """
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    home = session_home
    cache = home / ".cache"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("HF_HOME", str(cache / "huggingface"))
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    for name in CACHE_OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads its folders from the environment once, on import
    if "huggingface_hub.constants" in sys.modules:
        constants = sys.modules["huggingface_hub.constants"]
        monkeypatch.setattr(constants, "HF_HOME", str(cache / "huggingface"))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache / "huggingface" / "hub"))
        monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(cache / "huggingface" / "assets"))
    return home


@pytest.fixture(scope="session")
def source_image() -> Path:
    """Grace Hopper's portrait, shipped inside matplotlib."""
    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRun:
    """Runs `clipswap-video ARGS` in-process; returns (exit code, stderr)."""

    def run(*args: object) -> tuple[int, str]:
        code = main([str(arg) for arg in args])
        return code, capsys.readouterr().err

    return run
