#!/usr/bin/env python3
"""Synthetic photo-like image trees for the data-prep benchmark (run by hand).

    python3 tools/bench/make_images.py jpeg OUT --count 2000 --width 400 --height 300
    python3 tools/bench/make_images.py png  OUT --count 2000 --width 300 --height 300 --gray

Images are smooth colour fields plus band-limited noise and a few hard edges, so JPEG and
PNG compress them about as well as photographs (JPEG quality 90, 4:2:0; PNG zlib level 6).
They are split over 10 class folders OUT/c0 ... OUT/c9. Deterministic (--seed).
"""
import argparse
import os

import numpy as np
from PIL import Image


def image(rng, w, h, channels):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((h, w, channels), np.float32)
    # Band-limited noise: upsampled coarse random fields at two scales.
    def noise(scale):
        small = rng.standard_normal((h // scale + 2, w // scale + 2, channels)).astype(np.float32)
        big = np.stack([np.asarray(Image.fromarray(small[..., c]).resize((w, h), Image.BICUBIC))
                        for c in range(channels)], axis=-1)
        return big
    for c in range(channels):
        fx, fy, ph = rng.uniform(0.5, 3, 3)
        out[..., c] = 128 + 70 * np.sin(fx * xx / w * 6.28 + ph) * np.cos(fy * yy / h * 6.28)
    out += 25 * noise(24) + 14 * noise(6) + 10 * noise(2) + 5 * rng.standard_normal((h, w, channels)).astype(np.float32)
    # A few hard-edged shapes (edges are what make photos expensive to code).
    for _ in range(6):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        r = rng.integers(10, min(w, h) // 3)
        mask = (xx - x0) ** 2 + (yy - y0) ** 2 < r * r
        out[mask] = out[mask] * 0.4 + rng.uniform(0, 255, channels) * 0.6
    return np.clip(out, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["jpeg", "png"])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--height", type=int, default=300)
    ap.add_argument("--gray", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    ch = 1 if a.gray else 3
    for i in range(a.count):
        d = os.path.join(a.out, f"c{i % 10}")
        os.makedirs(d, exist_ok=True)
        px = image(rng, a.width, a.height, ch)
        im = Image.fromarray(px[..., 0] if ch == 1 else px, "L" if ch == 1 else "RGB")
        if a.kind == "jpeg":
            im.save(os.path.join(d, f"{i:05d}.jpg"), quality=90, subsampling=2)
        else:
            im.save(os.path.join(d, f"{i:05d}.png"), compress_level=6)


if __name__ == "__main__":
    main()
