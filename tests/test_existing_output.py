"""An existing OUT is replaced only by a complete new one: a run that fails,
early or mid-run, leaves it byte for byte as it was and no `*.partial.*` beside
it; a run that succeeds replaces it."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import CliRun
from PIL import Image

from clipswap_video.config import load_settings
from clipswap_video.errors import ExitCode
from clipswap_video.media import Frame
from clipswap_video.pipeline import run_video
from media_fixtures import write_clip

EARLIER = b"an earlier render that must survive a failed run\n"


def _damaged(path: Path) -> Path:
    """A clip with garbage over the middle third of its packets (decodes, then fails)."""
    write_clip(path, frames=30)
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = bytes(index % 251 for index in range(third))
    path.write_bytes(bytes(data))
    return path


def _faceless(path: Path) -> Path:
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(path)
    return path


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize(
    ("case", "expected", "words"),
    [
        ("source photo without a face", ExitCode.NO_FACE, "no face found in source image"),
        ("damaged input", ExitCode.CORRUPT_INPUT, "is damaged"),
        ("encoder rejects its settings", ExitCode.BAD_CONFIG_VALUE, "rejected its settings"),
    ],
)
def test_a_failed_run_leaves_an_existing_out_as_it_was(
    cli: CliRun,
    source_image: Path,
    tmp_path: Path,
    case: str,
    expected: ExitCode,
    words: str,
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(EARLIER)
    source, clip, flags = source_image, write_clip(tmp_path / "in.mp4", frames=12), []
    if case == "source photo without a face":
        source, flags = _faceless(tmp_path / "wall.png"), ["--swapper", "classic"]
    elif case == "damaged input":
        clip, flags = _damaged(tmp_path / "in.mp4"), ["--swapper", "none"]
    else:
        flags = ["--swapper", "none", "--set", "video.preset=nonsense"]
    code, err = cli(source, clip, out, *flags, "-q")
    lines = err.strip().splitlines()
    assert code == expected, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert out.read_bytes() == EARLIER
    assert not list(tmp_path.glob("*.partial.*"))


@pytest.mark.parametrize("failure", [RuntimeError("a bug in a stage"), KeyboardInterrupt()])
def test_a_run_stopped_mid_video_leaves_an_existing_out_as_it_was(
    source_image: Path, tmp_path: Path, failure: BaseException
) -> None:
    """A stage that raises after frames were encoded: a bug, or Ctrl-C."""
    out = tmp_path / "out.mp4"
    out.write_bytes(EARLIER)
    clip = write_clip(tmp_path / "in.mp4", frames=30)
    encoded: list[int] = []

    def fail_at_twenty(frame: Frame) -> None:
        if frame.index == 20:
            assert (tmp_path / "out.partial.mp4").stat().st_size > 0  # mid-write
            raise failure
        encoded.append(frame.index)

    settings = load_settings(overrides=["swap.swapper=none", "pipeline.queue_size=2"])
    with pytest.raises(type(failure)):
        run_video(source_image, clip, out, settings, stages=[fail_at_twenty])
    assert len(encoded) == 20
    assert out.read_bytes() == EARLIER
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_a_successful_run_replaces_an_existing_out(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mkv"
    out.write_bytes(EARLIER)
    clip = write_clip(tmp_path / "in.mp4", frames=12)
    code, err = cli(source_image, clip, out, "--swapper", "none", "-q")
    assert code == ExitCode.OK, err
    assert _frames(out) == 12
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4", "out.mkv"]


def test_a_failed_batch_job_leaves_an_existing_out_as_it_was(
    cli: CliRun, source_image: Path, tmp_path: Path
) -> None:
    """A batch into a folder that holds earlier renders: the job that fails
    keeps its old output, the one that succeeds replaces its own."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    _damaged(inputs / "bad.mp4")
    write_clip(inputs / "good.mp4", frames=12)
    for name in ("bad.mp4", "good.mp4"):
        (outputs / name).write_bytes(EARLIER)
    code, err = cli(
        "batch", source_image, inputs, outputs, "--swapper", "none", "--workers", "1", "-q"
    )
    assert code == ExitCode.JOBS_FAILED, err
    assert (outputs / "bad.mp4").read_bytes() == EARLIER
    assert _frames(outputs / "good.mp4") == 12
    assert not list(outputs.glob("*.partial.*"))
