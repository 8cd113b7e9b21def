#!/usr/bin/env python3
"""Writes a small image folder (ROOT/train/<class>/*.png and ROOT/test/<class>/*.png) to try
`repro prep imagefolder` and the run/sweep/table/plot commands without downloading anything.
Pure standard library.

Four classes of 32x32 RGB images on a noisy gray background: a bright square ("square"),
a disc ("disc"), horizontal stripes ("hstripes"), vertical stripes ("vstripes"), each at a
random place, size and colour.

    python3 tools/toy_imagefolder.py OUT_DIR [--per-class 60] [--test-per-class 20] [--size 32] [--seed 0]
"""
import argparse
import os
import random
import struct
import zlib


def png(path, pixels, w, h):
    raw = b"".join(b"\x00" + bytes(pixels[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def image(kind, s, rng):
    px = [min(255, max(0, int(rng.gauss(110, 25)))) for _ in range(s * s * 3)]
    colour = [rng.randrange(150, 256), rng.randrange(0, 120), rng.randrange(60, 256)]
    rng.shuffle(colour)
    r = rng.randrange(s // 6, s // 3)
    cx, cy = rng.randrange(r, s - r), rng.randrange(r, s - r)
    period = rng.randrange(3, 6)
    for y in range(s):
        for x in range(s):
            if kind == "square":
                on = abs(x - cx) <= r and abs(y - cy) <= r
            elif kind == "disc":
                on = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
            elif kind == "hstripes":
                on = (y // period) % 2 == 0 and abs(x - cx) <= 2 * r
            else:
                on = (x // period) % 2 == 0 and abs(y - cy) <= 2 * r
            if on:
                px[3 * (y * s + x):3 * (y * s + x) + 3] = colour
    return px


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--per-class", type=int, default=60, help="training images per class")
    ap.add_argument("--test-per-class", type=int, default=20)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for split, n in [("train", a.per_class), ("test", a.test_per_class)]:
        for kind in ["square", "disc", "hstripes", "vstripes"]:
            os.makedirs(os.path.join(a.out, split, kind), exist_ok=True)
            for i in range(n):
                png(os.path.join(a.out, split, kind, f"{i:04d}.png"), image(kind, a.size, rng), a.size, a.size)
    print(f"wrote {4 * a.per_class} training and {4 * a.test_per_class} test images of {a.size}x{a.size} "
          f"into {a.out}/train/<class>/ and {a.out}/test/<class>/")


if __name__ == "__main__":
    main()
