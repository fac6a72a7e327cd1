"""`weights list|verify` on one model folder: every role with the file found for
it, its SHA-256 against the manifest's (cached between runs) and its CRC32
against FaceFusion's `.hash` beside it; a FaceFusion checkout and an insightface
root work as `--weights` as they are. The files are stand-ins of a few bytes:
files are found by name."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun

from clipswap_video import digests
from clipswap_video.cli import main
from clipswap_video.digests import read_sidecar
from clipswap_video.errors import ExitCode
from clipswap_video.weights import ROLES

FACEFUSION_MODELS = [
    "inswapper_128.onnx",
    "arcface_w600k_r50.onnx",
    "simswap_256.onnx",
    "crossface_simswap.onnx",
    "ghost_1_256.onnx",
]


@pytest.fixture(autouse=True)
def wide_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that no cell of the table is folded mid-phrase."""
    monkeypatch.setenv("COLUMNS", "400")


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _facefusion(root: Path) -> Path:
    """A FaceFusion checkout's models folder: simswap_256 with its right `.hash`,
    ghost_1_256 with a wrong one."""
    models = root / "ff" / ".assets" / "models"
    for name in FACEFUSION_MODELS:
        _write(models / name, name.encode())
    _write(models / "simswap_256.hash", f"{zlib.crc32(b'simswap_256.onnx'):08x}".encode())
    _write(models / "ghost_1_256.hash", f"{zlib.crc32(b'not ghost'):08x}".encode())
    return models


def _list(capsys: pytest.CaptureFixture[str], *args: object) -> dict[str, dict[str, Any]]:
    assert main(["weights", "list", "--json", *(str(arg) for arg in args)]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize("layout", ["checkout", "models folder"])
def test_a_facefusion_folder_works_as_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, layout: str
) -> None:
    models = _facefusion(tmp_path)
    weights = tmp_path / "ff" if layout == "checkout" else models
    rows = _list(capsys, "--weights", weights)
    expected = {
        "inswapper_128.official": ("swapper", "inswapper_128.onnx"),
        "insightface.w600k_r50": ("identity", "arcface_w600k_r50.onnx"),
        "facefusion.simswap_256": ("swapper", "simswap_256.onnx"),
        "facefusion.crossface_simswap": ("converter", "crossface_simswap.onnx"),
        "facefusion.ghost_1_256": ("swapper", "ghost_1_256.onnx"),
    }
    for name, (role, file) in expected.items():
        row = rows[name]
        assert (row["role"], row["status"], row["path"]) == (role, "found", str(models / file))
        assert row["origin"] == "--weights" and row["sha256"] is not None
    assert rows["facefusion.uniface_256"]["status"] == "missing"
    assert rows["insightface.det_10g"]["status"] == "missing"
    simswap = rows["facefusion.simswap_256"]["facefusion_hash"]
    assert simswap["status"] == "matches" and simswap["crc32"] == simswap["expected"]
    ghost = rows["facefusion.ghost_1_256"]["facefusion_hash"]
    assert ghost["status"] == "mismatch" and ghost["expected"] == f"{zlib.crc32(b'not ghost'):08x}"
    assert ghost["path"] == str(models / "ghost_1_256.hash")
    assert rows["facefusion.crossface_simswap"]["facefusion_hash"] is None
    order = [ROLES.index(row["role"]) for row in rows.values()]
    assert order == sorted(order)  # grouped by role


def test_the_table_says_the_verdicts_and_what_auto_picks(cli: CliRun, tmp_path: Path) -> None:
    models = _facefusion(tmp_path)
    code, err = cli("weights", "list", "--weights", tmp_path / "ff")
    assert code == 0
    assert "matches FaceFusion's .hash" in err and "MISMATCH with FaceFusion's .hash" in err
    assert "unknown (none published)" in err  # simswap_256: FaceFusion publishes no sha256
    assert "MISMATCH: " in err  # the stand-in is not the published inswapper_128
    auto = next(line for line in err.splitlines() if line.startswith("--swapper auto:"))
    assert f"inswapper, swapper {models / 'inswapper_128.onnx'}" in auto
    assert f"identity {models / 'arcface_w600k_r50.onnx'}" in auto
    assert any(line.startswith("--detector auto: ") for line in err.splitlines())


def test_verify_fails_on_a_wrong_facefusion_hash_with_one_line(cli: CliRun, tmp_path: Path) -> None:
    models = _facefusion(tmp_path)
    assert cli("weights", "verify", "facefusion.simswap_256", "--json", "--weights", models)[0] == 0
    code, err = cli("weights", "verify", "facefusion.ghost_1_256", "--json", "--weights", models)
    assert code == ExitCode.CORRUPT_WEIGHTS and err.count("\n") == 1
    assert "CRC32 mismatch with FaceFusion's .hash: facefusion.ghost_1_256" in err


def test_list_only_shows_a_wrong_facefusion_hash(cli: CliRun, tmp_path: Path) -> None:
    models = _facefusion(tmp_path)
    assert cli("weights", "list", "facefusion.ghost_1_256", "--weights", models)[0] == 0


INSIGHTFACE_ROOTS = {
    ".insightface": True,
    ".insightface/models": True,
    ".insightface/models/buffalo_l": False,  # inswapper sits above it
}


@pytest.mark.parametrize("folder", INSIGHTFACE_ROOTS)
def test_an_insightface_root_works_as_it_is(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: str
) -> None:
    models = tmp_path / "home" / ".insightface" / "models"
    pack = {
        "insightface.det_10g": ("detector", _write(models / "buffalo_l" / "det_10g.onnx", b"d")),
        "insightface.w600k_r50": (
            "identity",
            _write(models / "buffalo_l" / "w600k_r50.onnx", b"w"),
        ),
        "insightface.2d106det": ("landmarks", _write(models / "buffalo_l" / "2d106det.onnx", b"l")),
    }
    swapper = _write(models / "inswapper_128.onnx", b"s")
    rows = _list(capsys, "--weights", tmp_path / "home" / folder)
    for name, (role, path) in pack.items():
        assert (rows[name]["role"], rows[name]["path"]) == (role, str(path))
    inswapper = rows["inswapper_128.official"]
    if INSIGHTFACE_ROOTS[folder]:
        assert (inswapper["status"], inswapper["path"]) == ("found", str(swapper))
    else:
        assert (inswapper["status"], inswapper["path"]) == ("missing", None)


def _manifest(folder: Path, **files: tuple[str, str]) -> Path:
    """A manifest of one entry per name: (file, published sha256)."""
    lines = []
    for (name, (file, sha256)), role in zip(files.items(), ROLES, strict=False):
        lines += [
            "[[weights]]",
            f'name = "{name}"',
            f'role = "{role}"',
            f'file = "{file}"',
            'kind = "test"',
            "size_bytes = 0",
            f'sha256 = "{sha256}"',
            'source = "test"',
            'licence = "none"',
        ]
    path = folder / "manifest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(weights folder, manifest): a right, a wrong, an unpublished and a converted
    hash; the cache in a folder of this test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tmp_path / "w"
    right = _write(weights / "right.onnx", b"right")
    _write(weights / "wrong.onnx", b"wrong")
    _write(weights / "free.onnx", b"free")
    _write(weights / "model.safetensors", b"converted")
    manifest = _manifest(
        tmp_path,
        right=("right.onnx", hashlib.sha256(right.read_bytes()).hexdigest()),
        wrong=("wrong.onnx", hashlib.sha256(b"something else").hexdigest()),
        free=("free.onnx", ""),
        converted=("model.h5", hashlib.sha256(b"the h5").hexdigest()),
    )
    return weights, manifest


def test_sha256_matches_mismatch_unknown_converted(
    capsys: pytest.CaptureFixture[str], hashed: tuple[Path, Path]
) -> None:
    weights, manifest = hashed
    rows = _list(capsys, "--weights", weights, "--manifest", manifest)
    assert {name: row["sha256_status"] for name, row in rows.items()} == {
        "right": "matches",
        "wrong": "mismatch",
        "free": "unknown",
        "converted": "converted",
    }
    assert rows["free"]["sha256"] == hashlib.sha256(b"free").hexdigest()
    assert rows["free"]["manifest_sha256"] is None
    assert rows["wrong"]["manifest_sha256"] == hashlib.sha256(b"something else").hexdigest()
    assert rows["converted"]["sha256"] == hashlib.sha256(b"converted").hexdigest()
    assert {row["status"] for row in rows.values()} == {"found"}  # list: whether it is there


def test_json_rows_have_the_new_keys(
    capsys: pytest.CaptureFixture[str], hashed: tuple[Path, Path]
) -> None:
    weights, manifest = hashed
    for action in ("list", "verify"):
        main(["weights", action, "--json", "--weights", str(weights), "--manifest", str(manifest)])
        row = json.loads(capsys.readouterr().out)[0]
        assert {"role", "sha256", "sha256_status", "manifest_sha256", "facefusion_hash"} <= set(row)
        assert {"name", "file", "status", "path", "folder", "origin", "location", "why"} <= set(row)


def test_verify_keeps_its_statuses_and_exit_code(cli: CliRun, hashed: tuple[Path, Path]) -> None:
    weights, manifest = hashed
    code, err = cli("weights", "verify", "--json", "--weights", weights, "--manifest", manifest)
    assert code == ExitCode.CORRUPT_WEIGHTS and err.count("\n") == 1
    assert "sha256 mismatch: wrong" in err
    for name in ("right", "free", "converted"):
        assert cli("weights", "verify", name, "--weights", weights, "--manifest", manifest)[0] == 0


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files hashed from now on."""
    read: list[Path] = []
    real = digests.digests_of

    def counted(path: Path) -> digests.Digests:
        read.append(path)
        return real(path)

    monkeypatch.setattr(digests, "digests_of", counted)
    return read


def test_list_reuses_the_cached_hashes_and_verify_reads_again(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hashed: tuple[Path, Path],
) -> None:
    weights, manifest = hashed
    args = ["--weights", weights, "--manifest", manifest]
    read = _counting(monkeypatch)
    first = _list(capsys, *args)
    assert len(read) == 4
    cache = json.loads((tmp_path / "cache" / "clipswap-video" / "sha256.json").read_text())
    entry = cache["files"][str((weights / "free.onnx").resolve())]
    assert entry["sha256"] == hashlib.sha256(b"free").hexdigest() and entry["size"] == 4
    read.clear()
    assert _list(capsys, *args) == first and read == []
    (weights / "free.onnx").write_bytes(b"freer")  # another size: read again
    assert _list(capsys, *args)["free"]["sha256"] == hashlib.sha256(b"freer").hexdigest()
    assert read == [weights / "free.onnx"]
    read.clear()
    main(["weights", "verify", "--json", *(str(arg) for arg in args)])
    capsys.readouterr()
    assert len(read) == 4


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{not json",
        b"[1, 2, 3]",
        b'{"files": [1]}',
        b'{"files": {"x": 3}}',
        b"[" * 100_000,
    ],
    ids=["bytes", "a list", "files a list", "an entry a number", "deep"],
)
def test_a_corrupt_cache_is_ignored_and_replaced(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hashed: tuple[Path, Path],
    content: bytes,
) -> None:
    weights, manifest = hashed
    cache = _write(tmp_path / "cache" / "clipswap-video" / "sha256.json", content)
    read = _counting(monkeypatch)
    rows = _list(capsys, "--weights", weights, "--manifest", manifest)
    assert rows["right"]["sha256_status"] == "matches" and len(read) == 4
    assert len(json.loads(cache.read_text())["files"]) == 4


def test_a_cached_entry_with_wrong_values_is_not_trusted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hashed: tuple[Path, Path]
) -> None:
    weights, manifest = hashed
    _list(capsys, "--weights", weights, "--manifest", manifest)
    cache = tmp_path / "cache" / "clipswap-video" / "sha256.json"
    table = json.loads(cache.read_text())
    table["files"][str((weights / "right.onnx").resolve())]["sha256"] = "not a hash"
    cache.write_text(json.dumps(table))
    rows = _list(capsys, "--weights", weights, "--manifest", manifest)
    assert rows["right"]["sha256"] == hashlib.sha256(b"right").hexdigest()


def test_an_unwritable_cache_folder_is_no_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hashed: tuple[Path, Path],
) -> None:
    weights, manifest = hashed
    monkeypatch.setenv("XDG_CACHE_HOME", str(_write(tmp_path / "a file", b"")))
    rows = _list(capsys, "--weights", weights, "--manifest", manifest)
    assert rows["wrong"]["sha256_status"] == "mismatch"


def test_no_hash_reads_no_file(
    cli: CliRun,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hashed: tuple[Path, Path],
) -> None:
    weights, manifest = hashed
    read = _counting(monkeypatch)
    rows = _list(capsys, "--no-hash", "--weights", weights, "--manifest", manifest)
    assert read == [] and {row["sha256"] for row in rows.values()} == {None}
    assert {row["sha256_status"] for row in rows.values()} == {"skipped"}
    code, err = cli("weights", "verify", "--no-hash", "--weights", weights)
    assert code == ExitCode.BAD_CONFIG_VALUE and err.count("\n") == 1


def test_a_file_that_cannot_be_read_is_one_line(
    cli: CliRun, monkeypatch: pytest.MonkeyPatch, hashed: tuple[Path, Path]
) -> None:
    weights, manifest = hashed

    def refuse(path: Path) -> digests.Digests:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(digests, "digests_of", refuse)
    args = ("--weights", weights, "--manifest", manifest)
    code, _ = cli("weights", "list", "--json", *args)
    assert code == 0
    code, err = cli("weights", "verify", "right", "--json", *args)
    assert code == ExitCode.CORRUPT_WEIGHTS and err.count("\n") == 1
    assert f"cannot read {weights / 'right.onnx'} (Permission denied)" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"0a1b2c3d", "0a1b2c3d"),
        (b"0A1B2C3D\n", "0a1b2c3d"),
        (b"", None),
        (b"0a1b2c3", None),
        (b"0a1b2c3d0", None),
        (b"0a1b2c3g", None),
        (b"\x00\xff\x10\x80\x00\xff\x10\x80", None),
        (b"0a1b2c3d" + b" " * 100, None),
        (b"0" * (1 << 20), None),
    ],
)
def test_a_facefusion_hash_file_is_read_defensively(
    tmp_path: Path, content: bytes, expected: str | None
) -> None:
    check = read_sidecar(_write(tmp_path / "model.hash", content))
    assert check.expected == expected
    assert (check.status, bool(check.problem)) == (
        ("skipped", False) if expected else ("unreadable", True)
    )


def test_an_unreadable_facefusion_hash_is_shown_not_failed(
    cli: CliRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    models = _facefusion(tmp_path)
    (models / "simswap_256.hash").write_bytes(b"\x00garbage" * 1000)
    (models / "crossface_simswap.hash").mkdir()  # a folder is no sidecar
    rows = _list(capsys, "--weights", models)
    assert rows["facefusion.simswap_256"]["facefusion_hash"]["status"] == "unreadable"
    assert rows["facefusion.crossface_simswap"]["facefusion_hash"] is None
    code, err = cli("weights", "verify", "facefusion.simswap_256", "--weights", models)
    assert code == 0 and "FaceFusion's .hash is unreadable (not 8 hex digits)" in err


def test_the_table_is_one_short_line_per_file_unless_verbose(cli: CliRun, tmp_path: Path) -> None:
    """Where a missing file may sit and the whole hashes are -v's (and --json's);
    the plain table says what is there and its verdicts."""
    models = _facefusion(tmp_path)
    code, plain = cli("weights", "list", "--weights", models)
    assert code == 0 and "looked for" not in plain and "missing (ClipSwap.h5)" in plain
    digest = hashlib.sha256(b"simswap_256.onnx").hexdigest()
    assert f"{digest[:12]}…" in plain and digest not in plain
    code, verbose = cli("weights", "list", "-v", "--weights", models)
    assert code == 0 and "looked for ClipSwap.h5" in verbose and digest in verbose
    code, elsewhere = cli("weights", "list", "--weights", tmp_path / "empty")
    assert code == 0 and "FaceFusion .hash" not in elsewhere  # only where such files are
