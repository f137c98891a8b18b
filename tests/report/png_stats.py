#!/usr/bin/env python3
"""png_stats.py: decodes a PNG with the standard library only (zlib, struct)
and prints JSON facts the report test checks a screenshot with: width,
height, the number of distinct colours, the share of pixels that are not
near-white, and the share of "ink" (dark) pixels. Handles 8-bit grey, RGB,
grey+alpha and RGBA, non-interlaced (what Chromium writes); anything else is
an error (exit 2)."""
import json
import struct
import sys
import zlib


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        raise ValueError("no IHDR")
    width, height, depth, ctype, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError("unsupported PNG: depth %d colour type %d interlace %d" % (depth, ctype, interlace))
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    prev = bytearray(stride)
    rows = []
    p = 0
    for _ in range(height):
        f = raw[p]
        line = bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        if f == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif f == 2:
            line = bytearray((x + y) & 0xFF for x, y in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                upleft = prev[i - channels] if i >= channels else 0
                line[i] = (line[i] + paeth(left, prev[i], upleft)) & 0xFF
        elif f != 0:
            raise ValueError("bad filter %d" % f)
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def main():
    width, height, channels, rows = decode(sys.argv[1])
    colours = set()
    nonwhite = ink = 0
    for line in rows:
        if channels >= 3:
            px = list(zip(line[0::channels], line[1::channels], line[2::channels]))
        else:
            px = [(v, v, v) for v in line[0::channels]]
        colours.update(px)
        nonwhite += sum(1 for m in map(min, px) if m < 240)
        ink += sum(1 for m in map(max, px) if m < 110)
    total = width * height
    print(json.dumps({"width": width, "height": height, "colours": len(colours),
                      "nonwhite_fraction": nonwhite / total, "ink_fraction": ink / total}))


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, zlib.error) as e:
        print("png_stats: %s" % e, file=sys.stderr)
        sys.exit(2)
