"""Outputs written through a partial file: whole or absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipswap_video.atomic import atomic_output, is_partial, partial_path, write_text_atomic


def test_partial_names_keep_the_extension_last() -> None:
    assert partial_path(Path("out/clip.mp4")) == Path("out/clip.partial.mp4")
    assert partial_path(Path("a.tar.gz")) == Path("a.tar.partial.gz")
    assert partial_path(Path("README")) == Path("README.partial")
    for path in (Path("clip.mp4"), Path("README"), Path(".hidden.json")):
        assert is_partial(partial_path(path)) and not is_partial(path)
    assert not is_partial(Path("partial.mp4")) and not is_partial(Path("a.partially.mp4"))


def test_success_leaves_only_the_final_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with atomic_output(target) as partial:
        partial.write_text("new")
        assert target.read_text() == "old"  # the earlier file stays until the end
    assert target.read_text() == "new"
    write_text_atomic(tmp_path / "b.txt", "é\n")
    assert (tmp_path / "b.txt").read_bytes() == "é\n".encode()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b.txt", "report.json"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_leaves_no_file_and_no_partial(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(error), atomic_output(target) as partial:
        partial.write_bytes(b"half")
        raise error("stopped")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(error), atomic_output(target) as partial:
        partial.write_bytes(b"half")
        raise error("stopped")
    assert list(tmp_path.iterdir()) == [target] and target.read_text() == "old"
