"""Regressions found by the fuzz suite (tests/test_fuzz.py), one named test each:
the shrunk damaged inputs under tests/data/fuzz/, or files built here, and
what the tool must do with them (an output, or one clear line and no file)."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clipswap_video.errors import ExitCode
from media_fixtures import write_clip

CliRun = object  # the `cli` fixture of conftest.py
FUZZ = Path(__file__).parent / "data" / "fuzz"
TRUNCATED_VFR = FUZZ / "probe_seek_eperm_truncated_vfr.mp4"
"""vfr.mp4 of tests/fuzz_corpus.py cut off after 3758 bytes (its moov box is gone)."""


def frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_probe_seek_eperm_on_truncated_mp4(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """probe of a damaged file: JSON, or exit 8 (CORRUPT_INPUT) / 6 with one line."""
    code, err = cli("probe", TRUNCATED_VFR, "--json")
    assert code in (ExitCode.OK, ExitCode.CORRUPT_INPUT, ExitCode.INPUT_UNREADABLE), err


@pytest.mark.parametrize("tolerate", [False, True])
def test_swap_seek_eperm_on_truncated_mp4(
    cli, source_image: Path, tmp_path: Path, tolerate: bool
) -> None:  # type: ignore[no-untyped-def]
    """The swap command on the same file: a clean exit 8, or with --tolerate-errors an output."""
    out = tmp_path / "out.mp4"
    extra = ["--tolerate-errors"] if tolerate else []
    code, err = cli(source_image, TRUNCATED_VFR, out, "--swapper", "none", *extra)
    assert code in (ExitCode.OK, ExitCode.CORRUPT_INPUT, ExitCode.INPUT_UNREADABLE), err
    assert (code == ExitCode.OK) == out.exists()


def test_swap_to_webm_with_the_default_codec(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found on the fuzz seeds: OUT.webm with the default encoder was a traceback;
    the default now follows the container (VP9), and H.264 asked for is one line."""
    clip = write_clip(tmp_path / "in.webm", width=32, height=24, frames=3, codec="libvpx-vp9")
    out = tmp_path / "out.webm"
    code, err = cli(source_image, clip, out, "--swapper", "none", "--codec", "libx264")
    assert code == ExitCode.BAD_OUTPUT_PATH, err
    assert "WebM cannot hold libx264 video" in err and "--codec" in err
    assert err.count("\n") == 1 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.webm"]
    code, err = cli(source_image, clip, out, "--swapper", "none")
    assert code == ExitCode.OK, err
    assert frames(out) == 3


def test_sixteen_bit_png_portrait_is_a_face(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found on the fuzz seeds: the portrait as a 16-bit greyscale PNG (its 8-bit
    greyscale copy is found and swapped)."""
    with Image.open(source_image) as image:
        grey = np.asarray(image.convert("L").resize((170, 200)), np.uint16) * 257
    photo = tmp_path / "face16.png"
    Image.fromarray(grey).save(photo)
    clip = write_clip(tmp_path / "in.mp4", width=64, height=48, frames=2)
    code, err = cli(photo, clip, tmp_path / "out.mp4", "--swapper", "classic", "-q")
    assert code == ExitCode.OK, err


def test_mkv_duration_tag_that_is_not_a_clock(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """subs_font.mkv of the fuzz seeds with one byte duplicated inside a track's
    DURATION tag, under --tolerate-errors: an output, or exit 8."""
    out = tmp_path / "out.mkv"
    clip = FUZZ / "mkv_duration_tag_not_a_clock.mkv"
    code, err = cli(source_image, clip, out, "--swapper", "none", "--tolerate-errors", "-q")
    assert code in (ExitCode.OK, ExitCode.CORRUPT_INPUT), err
    assert (code == ExitCode.OK) == out.exists()


def test_mkv_tag_that_is_not_utf8(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A 2-frame 16 x 16 mkv with one byte duplicated before its DURATION tag's
    value (the length byte 0x93 lands in the text): an output, or exit 8 / 6."""
    out = tmp_path / "out.mkv"
    clip = FUZZ / "mkv_duration_tag_not_utf8.mkv"
    code, err = cli(source_image, clip, out, "--swapper", "none", "-q")
    assert code in (ExitCode.OK, ExitCode.CORRUPT_INPUT, ExitCode.INPUT_UNREADABLE), err
    assert (code == ExitCode.OK) == out.exists()


def test_ts_duplicated_run_mux_einval(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """aac.ts of the fuzz seeds with a run of packets duplicated, under
    --tolerate-errors: an output, or exit 8, and no partial file."""
    out = tmp_path / "out" / "out.ts"
    out.parent.mkdir()
    clip = FUZZ / "ts_mux_einval_duplicated_run.ts"
    code, err = cli(source_image, clip, out, "--swapper", "none", "--tolerate-errors", "-q")
    assert code in (ExitCode.OK, ExitCode.CORRUPT_INPUT), err
    assert sorted(p.name for p in out.parent.iterdir()) == (["out.ts"] if code == 0 else [])


@pytest.mark.parametrize("tolerate", [False, True])
@pytest.mark.parametrize(
    "name",
    [
        "ts_audio_packet_out_of_order.ts",  # a bit flipped, a run repeated: EINVAL
        "ts_aac_header_refused.ts",  # two chunks swapped: an AAC header, INVALIDDATA
    ],
)
def test_ts_audio_packet_the_muxer_refuses(
    cli, source_image: Path, tmp_path: Path, tolerate: bool, name: str
) -> None:  # type: ignore[no-untyped-def]
    """aac.ts of the fuzz seeds, damaged so that the output's muxer refuses a
    copied audio packet. Exit 8 and one line; with --tolerate-errors the packet
    is skipped and the job says so, where the muxer refuses it at once (an
    AAC header it refuses only while writing its queue is exit 8 either way)."""
    out = tmp_path / "out" / "out.ts"
    out.parent.mkdir()
    clip = FUZZ / name
    extra = ["--tolerate-errors"] if tolerate else []
    code, err = cli(source_image, clip, out, "--swapper", "none", *extra)
    if tolerate and name == "ts_aac_header_refused.ts":
        assert code == ExitCode.CORRUPT_INPUT, err
        assert "the mpegts muxer refuses what was copied from it" in err
        tolerate = False  # nothing written
    elif tolerate:
        assert code == ExitCode.OK, err
        assert re.search(r"skipped \d+ damaged audio/subtitle packet\(s\)", err), err
        assert frames(out) > 0
    else:
        assert code == ExitCode.CORRUPT_INPUT, err
        assert "the mpegts muxer refuses" in err
        assert len([line for line in err.splitlines() if "error" in line]) == 1
    assert sorted(p.name for p in out.parent.iterdir()) == (["out.ts"] if tolerate else [])


def test_mkv_attachment_name_not_utf8(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """subs_font.mkv of the fuzz seeds with one bit flipped in the attached
    font's file name (found by `make fuzz`): PyAV writes attachment names as
    strict UTF-8, so the name is kept with U+FFFD for the byte that is not."""
    out = tmp_path / "out.mkv"
    clip = FUZZ / "mkv_attachment_name_not_utf8.mkv"
    code, err = cli(source_image, clip, out, "--swapper", "none", "-q")
    assert code == ExitCode.OK, err
    with av.open(str(out), metadata_errors="surrogateescape") as result:
        [attachment] = [s for s in result.streams if s.type == "attachment"]
        assert "\ufffd" in attachment.name and len(attachment.data) > 0


def test_an_output_that_reads_back_without_its_video_is_not_kept(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """aac.ts of the fuzz seeds with a run repeated (found by `make fuzz`): its
    damaged audio, copied, makes the MPEG-TS muxer write a file whose video
    cannot be found again. The writer reads every output back: exit 8, no file."""
    out = tmp_path / "out" / "out.ts"
    out.parent.mkdir()
    clip = FUZZ / "ts_damaged_audio_hides_the_video.ts"
    code, err = cli(source_image, clip, out, "--swapper", "none", "--tolerate-errors", "-q")
    assert code == ExitCode.CORRUPT_INPUT, err
    assert "reads back with 0 of its 1 video packets" in err
    assert list(out.parent.iterdir()) == []
