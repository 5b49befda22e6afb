"""Reading a browser's PNG screenshot back, enough to check what it shows: 8-bit RGB or RGBA, not interlaced (what
Chromium writes). No imaging library: zlib and the five PNG row filters."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixels(self) -> set[tuple[int, int, int]]:
        found = set()
        for row in self.rows:
            for x in range(self.width):
                at = x * self.channels
                found.add((row[at], row[at + 1], row[at + 2]))
        return found

    def shows(self, colour: str, tolerance: int = 24) -> bool:
        """Whether some pixel is `colour` (#rrggbb), give or take antialiasing."""
        want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return any(
            all(abs(have - w) <= tolerance for have, w in zip(pixel, want, strict=True)) for pixel in self.pixels()
        )


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(data: bytes) -> Picture:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    at, idat, header = len(SIGNATURE), b"", b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[x] = (line[x] + _paeth(left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Picture(width, height, channels, rows)
