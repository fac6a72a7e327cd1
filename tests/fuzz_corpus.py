"""The fuzz suite's seeds: small valid files that tests/test_fuzz.py damages.

Every seed is written deterministically (fixed pictures, tones and settings)
with plain PyAV and Pillow, as tests/media_fixtures.py does, never with the
project's own writer. Each is a few KB: 64 x 48 px clips of 10 frames, so one
CLI run on a mutant stays well under a second or two and a fuzz case is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import matplotlib.cbook
import numpy as np
from PIL import Image

from media_fixtures import write_clip

WIDTH, HEIGHT, FRAMES = 64, 48, 10
SOURCE_SIZE = (170, 200)  # Grace Hopper's portrait scaled down: the face is still found

CONFIG_TOML = """\
[video]
crf = 20
preset = "ultrafast"
pix_fmt = "auto"

[input]
tolerate_errors = false

[pipeline]
queue_size = 8

[swap]
swapper = "none"
"""

JOBS_TOML = """\
[defaults]
source = "source.jpg"
set = ["video.crf=20", "video.preset=ultrafast"]

[[job]]
input = "in.mp4"
output = "out/"
container = "mkv"
set = ["input.tolerate_errors=false"]
"""
"""Relative paths only: a mutant stays inside its case's folder (see test_fuzz)."""


@dataclass(frozen=True)
class Corpus:
    """Seed files by name: `clips` (videos), `images` (source photos), `tomls`."""

    clips: dict[str, Path]
    images: dict[str, Path]
    tomls: dict[str, Path]
    source: Path
    """A small good source photo (a face) for the video and TOML cases."""
    target: Path
    """A good 2-frame clip for the image cases."""


def build_corpus(folder: Path) -> Corpus:
    """Writes every seed into `folder` (once per session)."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = _clips(folder)
    images = _images(folder)
    tomls = {
        "config.toml": _write_text(folder / "config.toml", CONFIG_TOML),
        "jobs.toml": _write_text(folder / "jobs.toml", JOBS_TOML),
    }
    target = write_clip(folder / "target.mp4", width=WIDTH, height=HEIGHT, frames=2)
    return Corpus(clips, images, tomls, images["source.jpg"], target)


def _clips(folder: Path) -> dict[str, Path]:
    small = {"width": WIDTH, "height": HEIGHT, "frames": FRAMES}
    font = bytes(range(256)) * 4  # an attachment's bytes: opaque to everyone
    clips = {
        "aac_rotated.mp4": write_clip(
            folder / "aac_rotated.mp4", audio=["aac"], rotation=90, **small
        ),
        "vfr.mp4": write_clip(
            folder / "vfr.mp4",
            width=WIDTH,
            height=HEIGHT,
            time_base=Fraction(1, 90000),
            pts=[0, 3000, 9000, 10500, 18000, 21000, 30000, 31500, 36000, 45000],
        ),
        "subs_font.mkv": write_clip(
            folder / "subs_font.mkv",
            audio=["libopus"],
            subtitles=True,
            attachment=font,
            chapters=["one", "two"],
            **small,
        ),
        "aac.mov": write_clip(folder / "aac.mov", audio=["aac"], **small),
        "aac.ts": write_clip(folder / "aac.ts", audio=["aac"], **small),
    }
    vp9 = "libvpx-vp9" if "libvpx-vp9" in av.codecs_available else "libvpx"
    clips["opus.webm"] = write_clip(folder / "opus.webm", codec=vp9, audio=["libopus"], **small)
    return clips


def _images(folder: Path) -> dict[str, Path]:
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as full:
        face = full.convert("RGB").resize(SOURCE_SIZE, Image.Resampling.LANCZOS)
    images = {}
    for name, image, options in [
        ("source.jpg", face, {"quality": 85}),
        ("face.png", face, {}),
        ("face.webp", face, {"quality": 60}),
        ("face_cmyk.jpg", face.convert("CMYK"), {"quality": 85}),
    ]:
        image.save(folder / name, **options)
        images[name] = folder / name
    deep = (np.asarray(face.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "face16.png")  # mode I;16: a 16-bit grey PNG
    images["face16.png"] = folder / "face16.png"
    return images


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def frames_decoded(path: Path) -> int:
    """Frames of the first video stream, decoded from start to end (raises on
    damage). Tags that are not UTF-8 are not damage: the tool copies them as
    they are."""
    with av.open(str(path), metadata_errors="surrogateescape") as container:
        return sum(1 for _ in container.decode(video=0))


__all__ = ["CONFIG_TOML", "JOBS_TOML", "Corpus", "build_corpus", "frames_decoded"]
