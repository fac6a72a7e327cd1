"""`input.hwaccel = "cuda"`: NVDEC decoding where it opens, the CPU's decoder
with one warning where it does not (every machine without an NVIDIA GPU)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from clipswap_video.demo import write_demo_media
from clipswap_video.media import _open
from clipswap_video.media.reader import VideoReader


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hwaccel")
    return write_demo_media(folder, seconds=0.5, width=320, height=240, audio=False).video


def _pictures(reader: VideoReader) -> list[np.ndarray]:
    return [frame.rgb() for frame in reader.frames()]


@pytest.mark.skipif(torch.cuda.is_available(), reason="NVDEC may open on this machine")
def test_without_a_gpu_it_decodes_on_the_cpu_and_says_so_once(
    clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _open.cuda_decoding.cache_clear()
    with caplog.at_level(logging.WARNING):
        with VideoReader(clip, hwaccel="cuda") as first, VideoReader(clip, hwaccel="cuda") as again:
            assert not first.hardware_decoding and not again.hardware_decoding
            decoded = _pictures(first)
    warnings = [r.getMessage() for r in caplog.records if "NVDEC" in r.getMessage()]
    assert len(warnings) == 1 and "decoding on the CPU" in warnings[0]
    with VideoReader(clip) as software:
        assert all(np.array_equal(a, b) for a, b in zip(decoded, _pictures(software), strict=True))


@pytest.mark.cuda
def test_nvdec_decodes_the_same_pictures(clip: Path) -> None:
    """H.264 decoding is exact by the standard: NVDEC's frames, brought to the
    host, are the CPU decoder's, and the reader says it used the GPU."""
    _open.cuda_decoding.cache_clear()
    with VideoReader(clip, hwaccel="cuda") as hardware, VideoReader(clip) as software:
        assert hardware.hardware_decoding
        pairs = list(zip(_pictures(hardware), _pictures(software), strict=True))
    assert len(pairs) == 15
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in pairs)
