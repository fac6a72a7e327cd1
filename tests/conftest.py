"""Shared fixtures: a real face photo and an in-process CLI runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.cbook
import pytest

from clipswap_video.cli import main

CliRun = Callable[..., tuple[int, str]]


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
