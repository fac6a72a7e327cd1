"""Small image sequences with exactly known pixels, written and read with plain
PyAV codec contexts and the OpenEXR package.

The project's own image writers and readers are never used here: fixtures
must not share the code under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import OpenEXR

from media_fixtures import picture

CODECS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx"}


def encode_image(rgb: np.ndarray, suffix: str, pix_fmt: str) -> bytes:
    """`rgb` (uint8, or uint16 at the 16-bit scale) as a PNG/TIFF/DPX file in `pix_fmt`."""
    source = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=source)
    frame = frame.reformat(format=pix_fmt) if pix_fmt != source else frame
    encoder = av.CodecContext.create(CODECS[suffix], "w")
    encoder.width, encoder.height, encoder.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
    encoder.time_base = Fraction(1, 1)
    frame.pts = 0
    return b"".join(bytes(packet) for packet in encoder.encode(frame) + encoder.encode(None))


def write_images(
    folder: Path,
    name: str,
    numbers: Iterable[int],
    *,
    width: int = 96,
    height: int = 64,
    pix_fmt: str = "rgb24",
    pictures: Callable[[int], np.ndarray] | None = None,
) -> list[Path]:
    """One file `name % number` per number in `folder` (made if missing), each
    media_fixtures.picture(number) (8-bit, or widened to 16 bits for a deep pix_fmt)."""
    folder.mkdir(parents=True, exist_ok=True)
    deep = pix_fmt != "rgb24"
    paths = []
    for number in numbers:
        rgb = pictures(number) if pictures else picture(number, width, height)
        if deep and rgb.dtype == np.uint8:
            rgb = rgb.astype(np.uint16) * 257
        path = folder / (name % number)
        path.write_bytes(encode_image(rgb, path.suffix, pix_fmt))
        paths.append(path)
    return paths


def write_exr(
    path: Path,
    linear: np.ndarray,
    *,
    half: bool = False,
    fps: Fraction | None = None,
    alpha: bool = False,
) -> Path:
    """`linear` (H x W x 3 float) as an EXR file, separate R, G, B (and A) channels."""
    pixels = linear.astype(np.float16 if half else np.float32)
    channels = {name: pixels[..., i].copy() for i, name in enumerate("RGB")}
    if alpha:
        channels["A"] = np.ones(pixels.shape[:2], pixels.dtype)
    header: dict[str, object] = {"compression": OpenEXR.PIZ_COMPRESSION}
    if fps is not None:
        header["framesPerSecond"] = fps
    path.parent.mkdir(parents=True, exist_ok=True)
    with OpenEXR.File(header, channels) as image:
        image.write(str(path))
    return path


def read_exr(path: Path) -> tuple[np.ndarray, dict[str, object]]:
    """An EXR file's R, G, B as float32 (H x W x 3) and its header."""
    with OpenEXR.File(str(path), separate_channels=True) as image:
        header = dict(image.header())
        channels = image.channels()
        rgb = np.stack([np.asarray(channels[n].pixels, np.float32) for n in "RGB"], axis=-1)
    return rgb, header


def decode_image(path: Path) -> av.VideoFrame:
    """A PNG/TIFF/DPX file decoded as one packet (its depth and metadata kept)."""
    decoder = av.CodecContext.create(CODECS[path.suffix.lower()], "r")
    return decoder.decode(av.Packet(path.read_bytes()))[0]


def video_frames(path: Path, format: str = "rgb24") -> list[tuple[float, np.ndarray]]:
    """(time in seconds, picture) of every frame of a video file."""
    with av.open(str(path)) as container:
        return [(f.time or 0.0, f.to_ndarray(format=format)) for f in container.decode(video=0)]


__all__ = [
    "decode_image",
    "encode_image",
    "read_exr",
    "video_frames",
    "write_exr",
    "write_images",
]
