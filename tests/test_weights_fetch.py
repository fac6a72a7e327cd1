"""`clipswap-video weights`: list, verify, and a resumable, hash-checked, atomic fetch
from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clipswap_video.cli import main
from clipswap_video.errors import ExitCode

PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes


class _Server:
    """Serves `files`; can ignore Range, or cut a response after `cut_after` bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.honour_range = True
        self.cut_after: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range")
                server.ranges.append(wanted)
                start = int(wanted[6:-1]) if wanted and server.honour_range else 0
                if start >= len(body) and start:
                    self.send_error(416)
                    return
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                part = body[start:]
                if server.cut_after is not None:
                    part, server.cut_after = part[: server.cut_after], None
                self.wfile.write(part)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    yield running
    running.httpd.shutdown()


def _manifest(tmp_path: Path, url: str, **entry: object) -> Path:
    fields = {
        "name": "tiny.model",
        "role": "generator",
        "file": "tiny.bin",
        "kind": "test",
        "size_bytes": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "source": "test",
        "licence": "none",
        "url": url,
        **entry,
    }
    lines = ["[[weights]]", *(f"{key} = {json.dumps(value)}" for key, value in fields.items())]
    path = tmp_path / "manifest.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _weights(cli, tmp_path: Path, manifest: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli("weights", *args, "--manifest", manifest, "--weights", tmp_path / "w")


def test_fetch_then_verify(cli, server: _Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server.files["/tiny.bin"] = PAYLOAD
    manifest = _manifest(tmp_path, f"{server.url}/tiny.bin")
    assert _weights(cli, tmp_path, manifest, "fetch", "tiny.model")[0] == 0
    assert (tmp_path / "w" / "tiny.bin").read_bytes() == PAYLOAD
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["tiny.bin"]
    assert _weights(cli, tmp_path, manifest, "verify", "tiny.model")[0] == 0


def test_interrupted_download_resumes_with_range(cli, server: _Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server.files["/tiny.bin"] = PAYLOAD
    server.cut_after = 3000
    manifest = _manifest(tmp_path, f"{server.url}/tiny.bin")
    code, err = _weights(cli, tmp_path, manifest, "fetch", "tiny.model")
    assert code == ExitCode.DOWNLOAD_FAILED and "run the same command to resume" in err
    assert err.count("\n") == 1
    assert (tmp_path / "w" / "tiny.partial.bin").stat().st_size == 3000
    assert not (tmp_path / "w" / "tiny.bin").exists()
    assert _weights(cli, tmp_path, manifest, "fetch", "tiny.model")[0] == 0
    assert server.ranges == [None, "bytes=3000-"]
    assert (tmp_path / "w" / "tiny.bin").read_bytes() == PAYLOAD


def test_server_without_range_support_restarts(cli, server: _Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server.files["/tiny.bin"] = PAYLOAD
    server.honour_range = False
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "tiny.partial.bin").write_bytes(b"stale bytes")
    manifest = _manifest(tmp_path, f"{server.url}/tiny.bin")
    assert _weights(cli, tmp_path, manifest, "fetch", "tiny.model")[0] == 0
    assert (tmp_path / "w" / "tiny.bin").read_bytes() == PAYLOAD


def test_wrong_bytes_are_refused_and_deleted(cli, server: _Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server.files["/tiny.bin"] = PAYLOAD[::-1]
    manifest = _manifest(tmp_path, f"{server.url}/tiny.bin")
    code, err = _weights(cli, tmp_path, manifest, "fetch", "tiny.model")
    assert code == ExitCode.CORRUPT_WEIGHTS and "expected" in err and err.count("\n") == 1
    assert list((tmp_path / "w").iterdir()) == []


def test_verify_finds_a_damaged_file(cli, server: _Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = _manifest(tmp_path, "")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "tiny.bin").write_bytes(PAYLOAD[:-1] + b"x")
    code, err = _weights(cli, tmp_path, manifest, "verify")
    assert code == ExitCode.CORRUPT_WEIGHTS and "sha256 mismatch: tiny.model" in err
    (tmp_path / "w" / "tiny.bin").unlink()
    assert _weights(cli, tmp_path, manifest, "verify", "tiny.model")[0] == ExitCode.MISSING_WEIGHTS


def test_unreachable_server_and_missing_hash(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manifest = _manifest(tmp_path, f"http://127.0.0.1:{port}/tiny.bin")
    code, err = _weights(cli, tmp_path, manifest, "fetch", "tiny.model")
    assert code == ExitCode.DOWNLOAD_FAILED and err.count("\n") == 1
    unhashed = _manifest(tmp_path, f"http://127.0.0.1:{port}/tiny.bin", sha256="")
    code, err = _weights(cli, tmp_path, unhashed, "fetch", "tiny.model")
    assert code == ExitCode.BAD_CONFIG_VALUE and "pass --sha256" in err


def test_zip_pack_is_unpacked_into_its_folder(cli, server: _Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("pack/det.onnx", b"detector")
        bundle.writestr("pack/rec.onnx", b"recogniser")
    server.files["/pack.zip"] = buffer.getvalue()
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    manifest = _manifest(
        tmp_path,
        f"{server.url}/pack.zip",
        name="pack.test",
        file="pack",
        archive="zip",
        sha256=digest,
        size_bytes=0,
    )
    assert _weights(cli, tmp_path, manifest, "fetch", "pack.test")[0] == 0
    assert (tmp_path / "w" / "pack" / "det.onnx").read_bytes() == b"detector"
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["pack"]


def test_list_no_hash_does_not_hash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "tiny.bin").write_bytes(b"anything")
    args = [
        "weights",
        "list",
        "--json",
        "--no-hash",
        "--manifest",
        str(manifest),
        "--weights",
        str(tmp_path / "w"),
    ]
    assert main(args) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["status"] == "found" and row["sha256"] is None


def test_converted_file_is_preferred_to_the_h5(tmp_path: Path) -> None:
    from clipswap_video.weights import find_weight, load_manifest

    [entry] = [e for e in load_manifest() if e.file == "ClipSwap.h5"]
    (tmp_path / "ClipSwap.h5").write_bytes(b"h5")
    assert find_weight(entry, tmp_path) == tmp_path / "ClipSwap.h5"
    (tmp_path / "ClipSwap.safetensors").write_bytes(b"st")
    assert find_weight(entry, tmp_path) == tmp_path / "ClipSwap.safetensors"


def test_packaged_manifest_carries_preprocessing() -> None:
    from clipswap_video.weights import load_manifest

    entries = load_manifest()
    assert {e.name for e in entries} >= {"clipswap_256.official", "insightface.buffalo_l"}
    assert all(entry.preprocessing for entry in entries)
    [facedancer] = [e for e in entries if e.name == "facedancer_256.config_c_hq"]
    assert facedancer.sha256.startswith("f7a420e1") and facedancer.preprocessing["crop"] == "256"
