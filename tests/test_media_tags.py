"""Values a file supplies, read without trusting them: tags that are not UTF-8,
clocks, display matrices and counts that do not parse."""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import pytest

from clipswap_video.errors import ExitCode
from clipswap_video.media.tags import (
    METADATA_ERRORS,
    count,
    matrix_entries,
    parse_clock,
    printable,
    printable_tree,
    rotation_degrees,
)
from media_fixtures import write_clip

LATIN_1_TITLE = "Caf\udce9 cr\udce8me"  # "Café crème" written as Latin-1 bytes, read as UTF-8


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:02.000000000", 2.0),
        ("01:02:03.5", 3723.5),
        ("0:00:00", 0.0),
        (" 00:01:00.25 ", 60.25),
        ("", None),
        (None, None),
        ("00/00:02.0", None),  # a damaged tag
        ("/0", None),
        ("1:2", None),
        ("1:02:03:04", None),
        ("a:bc:de", None),
        ("00:61:00", None),
        ("00:00:02.0e308", None),
        ("-1:00:00", None),
    ],
)
def test_a_clock_tag_parses_or_is_unknown(text: str | None, seconds: float | None) -> None:
    assert parse_clock(text) == seconds


def test_display_matrices_rotations_and_counts_that_do_not_parse() -> None:
    identity = (65536).to_bytes(4, "little") + bytes(12) + (65536).to_bytes(4, "little")
    identity += bytes(12) + (1 << 30).to_bytes(4, "little")
    assert matrix_entries(identity) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    assert matrix_entries(identity[:35]) is None and matrix_entries(b"") is None
    assert rotation_degrees(-90.0) == 270 and rotation_degrees(90) == 90
    assert rotation_degrees(math.nan) == 0 and rotation_degrees(None) == 0
    assert count(12) == 12 and count(0) is None and count(-5) is None and count(None) is None


def test_tags_that_are_not_utf8_print_with_a_replacement_character() -> None:
    assert printable(LATIN_1_TITLE) == "Caf\ufffd cr\ufffdme"
    report = {"metadata": {"title": LATIN_1_TITLE}, "streams": [("x", LATIN_1_TITLE)]}
    assert printable_tree(report) == {
        "metadata": {"title": "Caf\ufffd cr\ufffdme"},
        "streams": [["x", "Caf\ufffd cr\ufffdme"]],
    }


def _latin_1_clip(path: Path) -> Path:
    """A Matroska clip whose container and video titles are Latin-1 bytes, as
    older muxers wrote them."""
    clip = write_clip(path.with_name("plain.mkv"), frames=6)
    with (
        av.open(str(clip)) as source,
        av.open(str(path), "w", metadata_errors=METADATA_ERRORS) as target,
    ):
        target.metadata["title"] = LATIN_1_TITLE
        stream = target.add_stream_from_template(source.streams.video[0])
        stream.metadata["title"] = LATIN_1_TITLE
        for packet in source.demux(source.streams.video[0]):
            if packet.size:
                packet.stream = stream
                target.mux(packet)
    assert "Caf\xe9 cr\xe8me".encode("latin-1") in path.read_bytes()
    return path


def test_a_file_with_latin_1_tags_is_probed_and_keeps_its_bytes(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = _latin_1_clip(tmp_path / "latin.mkv")
    with pytest.raises(UnicodeDecodeError):  # what PyAV does by default
        av.open(str(clip))
    code, _ = cli("probe", clip, "--json")
    assert code == ExitCode.OK
    output = tmp_path / "out.mkv"
    code, err = cli(source_image, clip, output, "--swapper", "none", "-q")
    assert code == ExitCode.OK, err
    with av.open(str(output), metadata_errors=METADATA_ERRORS) as result:
        assert result.metadata["title"] == LATIN_1_TITLE
        assert result.streams.video[0].metadata["title"] == LATIN_1_TITLE


def test_the_probe_report_shows_latin_1_tags_replaced(
    source_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipswap_video.cli import main

    clip = _latin_1_clip(tmp_path / "latin.mkv")
    assert main(["probe", str(clip), "--json"]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["metadata"]["title"] == "Caf\ufffd cr\ufffdme"


def test_a_damaged_matroska_duration_tag_is_unknown(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mkv", frames=12)
    data = clip.read_bytes()
    at = data.find(b"00:00:00.")  # the muxer's own per-track DURATION tag
    assert at > 0
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(data[:at] + b"00/00:00." + data[at + 9 :])
    output = tmp_path / "out.mkv"
    code, err = cli(source_image, damaged, output, "--swapper", "none", "--tolerate-errors")
    assert code == ExitCode.OK, err
    with av.open(str(output)) as result:
        assert sum(1 for _ in result.decode(video=0)) == 12
