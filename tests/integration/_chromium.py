"""Screenshots of the HTML reports with headless Chromium, and a standard-library PNG reader to check them.

Shared by the report tests (tests/integration) and the audit Molecule verifier (molecule/audit/tests), and by the
audit_scale benchmark, which commits one screenshot under docs/.
"""
from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import zlib

# Offline and quiet: no network, no first-run work, a fresh profile each time. --no-sandbox because the tests run
# as root.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def screenshot(html_path, png_path, width=1280, height=2000, timeout=120):
    """Render ``html_path`` into ``png_path``; return Chromium's output (raises AssertionError on failure)."""
    if os.path.exists(png_path):
        os.unlink(png_path)
    with tempfile.TemporaryDirectory(prefix="lntcp-chromium-") as profile:
        done = subprocess.run(["chromium", *FLAGS, "--user-data-dir=%s" % profile, "--screenshot=%s" % png_path,
                               "--window-size=%d,%d" % (width, height), "file://" + os.path.abspath(html_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    assert done.returncode == 0 and os.path.exists(png_path), done.stdout[-3000:]
    return done.stdout


def png_pixels(path):
    """(width, height, bytes per pixel, rows) of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 3
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, prev, rows = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colours(path, step=4):
    """(set of RGB colours, share of non-white pixels) over a grid of every ``step``-th pixel."""
    width, height, bpp, rows = png_pixels(path)
    seen, painted, total = set(), 0, 0
    for row in rows[::step]:
        for x in range(0, width * bpp, bpp * step):
            pixel = row[x:x + 3]
            seen.add(pixel)
            painted += pixel != b"\xff\xff\xff"
            total += 1
    return seen, painted / max(total, 1)


def rgb(hex_colour):
    return bytes.fromhex(hex_colour.lstrip("#"))
