"""The GPU machine's wheels and launcher (tools/gpu_wheels.py, tools/gpu_check.sh),
without the network: which wheel fits, what is kept, fetched and removed, the size
limit, and what the launcher installs and runs (with a stand-in python3)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_wheels", ROOT / "tools" / "gpu_wheels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_wheels = _load_tool()


@pytest.mark.parametrize(
    ("name", "fits_312", "fits_311"),
    [
        ("av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl", True, True),
        ("openexr-3.5.3-cp312-cp312-manylinux_2_28_x86_64.whl", True, False),
        ("openexr-3.5.3-cp311-cp311-manylinux_2_28_x86_64.whl", False, True),
        ("wcwidth-0.9.4-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", True, True),
        ("x-1.0-cp312-cp312-manylinux1_x86_64.manylinux_2_5_x86_64.whl", True, False),
        ("x-1.0-py3-none-any.whl", True, True),
        ("x-1.0-py2.py3-none-any.whl", True, True),
        ("x-1.0-cp312-cp312-musllinux_1_2_x86_64.whl", False, False),
        ("x-1.0-cp312-cp312-manylinux_2_28_aarch64.whl", False, False),
        ("x-1.0-cp312-cp312-linux_x86_64.whl", False, False),
    ],
)
def test_the_wheels_that_fit_a_python(name: str, fits_312: bool, fits_311: bool) -> None:
    package, version = name.split("-")[:2]
    for python, fits in (("3.12", fits_312), ("3.11", fits_311)):
        tags = gpu_wheels.target_tags(python)
        assert gpu_wheels.matches(Path(name), package, version, tags) is fits, python


def test_a_wheel_of_another_version_or_name_does_not_match() -> None:
    tags = gpu_wheels.target_tags("3.12")
    wheel = Path("pytest_timeout-2.4.0-py3-none-any.whl")
    assert gpu_wheels.matches(wheel, "pytest-timeout", "2.4.0", tags)
    assert not gpu_wheels.matches(wheel, "pytest-timeout", "2.3.1", tags)
    assert not gpu_wheels.matches(wheel, "pytest", "2.4.0", tags)


def test_fill_keeps_what_fits_fetches_the_rest_and_removes_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / ".whl"
    dest.mkdir()
    for name in (
        "av-18.0.0-cp311-abi3-manylinux_2_28_x86_64.whl",  # an older version
        "pytest-9.2.0-py3-none-any.whl",  # already there
        "openexr-3.5.3-cp311-cp311-manylinux_2_28_x86_64.whl",  # for another Python
        "ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl",  # no longer listed
    ):
        (dest / name).write_bytes(b"old")
    fetched: list[str] = []

    def fetch(name: str, wanted: str, python: str, into: Path) -> Path:
        fetched.append(f"{name}=={wanted} for {python}")
        wheel = into / f"{name}-{wanted}-cp312-cp312-manylinux_2_28_x86_64.whl"
        wheel.write_bytes(b"new")
        return wheel

    monkeypatch.setattr(gpu_wheels, "fetch", fetch)
    versions = {"av": "18.1.0", "pytest": "9.2.0", "openexr": "3.5.3"}
    wheels = gpu_wheels.fill(dest, versions, "3.12")

    assert fetched == ["av==18.1.0 for 3.12", "openexr==3.5.3 for 3.12"]
    expected = {
        "av-18.1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "pytest-9.2.0-py3-none-any.whl",
        "openexr-3.5.3-cp312-cp312-manylinux_2_28_x86_64.whl",
    }
    assert {path.name for path in dest.iterdir()} == expected
    assert {wheel.name for wheel in wheels} == expected
    assert (dest / "pytest-9.2.0-py3-none-any.whl").read_bytes() == b"old"


def test_every_listed_wheel_is_pinned_to_this_environment() -> None:
    versions = gpu_wheels.pinned(list(gpu_wheels.WHEELS))
    assert set(versions) == set(gpu_wheels.WHEELS) and all(versions.values())


def test_a_package_not_installed_is_one_line() -> None:
    with pytest.raises(SystemExit, match="^gpu-wheels: no-such-dist is not installed in "):
        gpu_wheels.pinned(["no-such-dist"])


def test_the_travelling_tree_is_tracked_and_untracked_files_not_ignored(tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/.whl/\n")  # 7 bytes
    (tmp_path / "tracked.txt").write_bytes(b"x" * 100)
    subprocess.run([git, "-C", str(tmp_path), "add", "tracked.txt"], check=True)
    (tmp_path / "untracked.txt").write_bytes(b"x" * 10)
    (tmp_path / ".whl").mkdir()
    (tmp_path / ".whl" / "big.whl").write_bytes(b"x" * 1000)
    assert gpu_wheels.travelling_bytes(tmp_path) == 7 + 100 + 10


def test_over_the_limit_fails_with_one_line_after_the_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path / "av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"x" * gpu_wheels.MIB)
    monkeypatch.setattr(gpu_wheels, "fill", lambda *_: [wheel])
    monkeypatch.setattr(gpu_wheels, "travelling_bytes", lambda _: 2 * gpu_wheels.MIB)
    assert gpu_wheels.main(["--dest", str(tmp_path)]) == 0
    assert "3.00 MiB  travel to the GPU machine (limit 56 MiB)" in capsys.readouterr().out

    monkeypatch.setattr(gpu_wheels, "travelling_bytes", lambda _: 56 * gpu_wheels.MIB)
    with pytest.raises(SystemExit) as failed:
        gpu_wheels.main(["--dest", str(tmp_path)])
    assert str(failed.value) == "gpu-wheels: 57.00 MiB travel, over the 56 MiB limit"
    printed = capsys.readouterr().out
    assert "1.00 MiB  av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl" in printed
    assert "56.00 MiB  working tree" in printed


# A python3 that logs its PYTHONPATH and arguments, one line a call.
STAND_IN = '#!/bin/sh\necho "$PYTHONPATH|$*" >> "$CALLS"\n'


def _launcher(tmp_path: Path, wheels: list[str]) -> tuple[Path, dict[str, str]]:
    """A tree holding tools/gpu_check.sh and .whl/WHEELS, and an environment whose
    python3 is the stand-in."""
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    shutil.copy2(ROOT / "tools" / "gpu_check.sh", tree / "tools")
    (tree / ".whl").mkdir()
    for name in wheels:
        (tree / ".whl" / name).write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(STAND_IN)
    (bin_dir / "python3").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": "/before",
        "OUT": str(tmp_path / "out"),
    }
    return tree, env


def test_the_launcher_installs_the_wheels_aside_and_runs_the_check_from_the_tree(
    tmp_path: Path,
) -> None:
    tree, env = _launcher(tmp_path, ["a-1-py3-none-any.whl", "b-2-py3-none-any.whl"])
    done = subprocess.run(
        [str(tree / "tools" / "gpu_check.sh"), "--small"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    install, check = (tmp_path / "calls").read_text().splitlines()
    site = Path(install.split("--target ")[1].split()[0])
    assert site.parent == tmp_path and site.name.startswith("clipswap-gpu-site.")
    assert not site.exists()  # removed on the way out
    assert install == (
        f"/before|-m pip install --quiet --no-index --no-deps --no-cache-dir --target {site}"
        f" {tree}/.whl/a-1-py3-none-any.whl {tree}/.whl/b-2-py3-none-any.whl"
    )
    out = tmp_path / "out"
    assert check == f"{site}:{tree}:/before|-m clipswap_video gpu-check --out {out} --small"


def test_the_launcher_without_wheels_is_one_line(tmp_path: Path) -> None:
    tree, env = _launcher(tmp_path, [])
    done = subprocess.run(
        [str(tree / "tools" / "gpu_check.sh")], env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"gpu_check: no wheels in {tree}/.whl: run 'make gpu-wheels' and carry .whl\n"
    )
    assert not (tmp_path / "calls").exists()
