"""A command whose optional extra is not installed ends with one line naming the
pip command; the base install needs neither extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clipswap_video.demo import write_demo_media
from clipswap_video.errors import MissingExtraError
from clipswap_video.train.data import read_video_frames

EXTRAS_PACKAGES = "skimage,matplotlib,decord,tensorboard"  # of the [demo] and [train] extras

# Run as `python -c PACKAGES ARGS`: a None in sys.modules makes every import of
# that package fail as if it were not installed.
WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from clipswap_video.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_without(packages: str, *args: object) -> subprocess.CompletedProcess[str]:
    """`clipswap-video ARGS` in a fresh interpreter that cannot import `packages`."""
    command = [sys.executable, "-c", WITHOUT, packages, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("package", ["skimage", "matplotlib"])
def test_demo_media_without_the_demo_extra(tmp_path: Path, package: str) -> None:
    done = run_without(package, "demo-media", tmp_path / "d")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: the demo media needs the [demo] extra ({package} is not installed): "
        "pip install 'clipswap-video[demo]'\n"
    )
    assert not (tmp_path / "d").exists()  # nothing written


def test_swap_without_the_extras(tmp_path: Path) -> None:
    """A render node's install (no [demo], no [train]) swaps a clip."""
    media = write_demo_media(tmp_path, seconds=0.5, width=160, height=96, fps=10, audio=False)
    output = tmp_path / "out.mp4"
    done = run_without(EXTRAS_PACKAGES, media.source_image, media.video, output, "--quiet")
    assert done.returncode == 0, done.stderr
    assert output.is_file()


def test_training_videos_without_the_train_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "decord", None)
    with pytest.raises(MissingExtraError) as raised:
        read_video_frames(tmp_path / "clip.mp4", 4)
    assert str(raised.value) == (
        "training on videos needs the [train] extra (decord is not installed): "
        "pip install 'clipswap-video[train]'"
    )


def test_batch_on_ray_without_the_ray_extra(tmp_path: Path) -> None:
    from media_fixtures import write_clip

    (tmp_path / "in").mkdir()
    write_clip(tmp_path / "in" / "a.mp4", frames=2)
    (tmp_path / "src.jpg").write_bytes(b"")  # never read: Ray is checked first
    done = run_without(
        "ray",
        "batch",
        tmp_path / "src.jpg",
        tmp_path / "in",
        tmp_path / "out",
        "--swapper",
        "none",
        "--ray",
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith(
        "error: batch --ray needs the [ray] extra (ray is not installed): "
        "pip install 'clipswap-video[ray]'\n"
    )
    assert not (tmp_path / "out").exists()  # no manifest, no folder
