"""The disclosure tag inside an encoded image, in the text field its format has.

FFmpeg's PNG, TIFF and DPX encoders write no text from a frame's metadata
(PNG gets its colour chunks, TIFF a Software tag, DPX "Lavc..." as creator),
so the tag is put into the encoded bytes here, in the field every reader of the
format shows:

- PNG: a tEXt chunk with the keyword "Comment", right after IHDR;
- TIFF: an ImageDescription (270) entry; the first IFD is copied to the end of
  the file with the entry added, and the header points to the copy;
- DPX: the file header's creator field (100 bytes at offset 160).
"""

from __future__ import annotations

import struct
import zlib

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 bytes and CRC
_TIFF_DESCRIPTION = 270
_TIFF_ASCII = 2
_DPX_CREATOR = slice(160, 260)


def tag_png(data: bytes, text: str) -> bytes:
    """`data` (a PNG file) with a tEXt "Comment" chunk holding `text` (Latin-1)."""
    assert data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR"
    body = b"tEXt" + b"Comment\x00" + text.encode("latin-1", "replace")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:_IHDR_END] + chunk + data[_IHDR_END:]


def tag_tiff(data: bytes, text: str) -> bytes:
    """`data` (a classic TIFF file) with `text` as the first image's ImageDescription."""
    order = {b"II": "<", b"MM": ">"}[data[:2]]
    (first_ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[first_ifd : first_ifd + 2])
    table = data[first_ifd + 2 : first_ifd + 2 + 12 * count]
    entries = [table[i : i + 12] for i in range(0, len(table), 12)]
    next_ifd = data[first_ifd + 2 + 12 * count : first_ifd + 6 + 12 * count]
    value = text.encode("ascii", "replace") + b"\x00"
    out = bytearray(data)
    out += b"\x00" * (len(out) % 2)  # TIFF wants word-aligned offsets
    value_at = len(out)
    out += value + b"\x00" * (len(value) % 2)
    description = struct.pack(order + "HHII", _TIFF_DESCRIPTION, _TIFF_ASCII, len(value), value_at)
    kept = [entry for entry in entries if _tag(entry, order) != _TIFF_DESCRIPTION]
    entries = sorted([*kept, description], key=lambda entry: _tag(entry, order))
    ifd_at = len(out)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + next_ifd
    out[4:8] = struct.pack(order + "I", ifd_at)
    return bytes(out)


def tag_dpx(data: bytes, text: str) -> bytes:
    """`data` (a DPX file) with `text` as its creator (at most 99 ASCII bytes)."""
    field = text.encode("ascii", "replace")[: _DPX_CREATOR.stop - _DPX_CREATOR.start - 1]
    size = _DPX_CREATOR.stop - _DPX_CREATOR.start
    return data[: _DPX_CREATOR.start] + field.ljust(size, b"\x00") + data[_DPX_CREATOR.stop :]


def _tag(entry: bytes, order: str) -> int:
    return int(struct.unpack(order + "H", entry[:2])[0])


__all__ = ["tag_dpx", "tag_png", "tag_tiff"]
