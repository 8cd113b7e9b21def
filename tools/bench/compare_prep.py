#!/usr/bin/env python3
"""Compares the train split of a `repro prep imagefolder` output with pillow_prep.py's.

    python3 tools/bench/compare_prep.py OURS_DIR PILLOW_DIR

Prints the number of images, label equality, and how many pixel values differ by how much
(the two resize in the same geometry with the same filter; Pillow rounds to uint8 between
its passes and uses fixed-point weights, we keep float).
"""
import glob
import os
import sys

import h5py
import numpy as np


def load(d):
    images, labels = [], []
    for f in sorted(glob.glob(os.path.join(d, "train-*.h5"))):
        with h5py.File(f, "r") as h:
            images.append(h["images"][...])
            labels.append(h["labels"][...])
    return np.concatenate(images), np.concatenate(labels)


def main():
    a, la = load(sys.argv[1])
    b, lb = load(sys.argv[2])
    print(f"images: ours {a.shape}, pillow {b.shape}; labels equal: {np.array_equal(la, lb)}")
    if a.shape != b.shape:
        sys.exit(1)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    n = d.size
    print(f"identical values: {100 * np.mean(d == 0):.3f}%   max |diff|: {d.max()}   mean |diff|: {d.mean():.4f}")
    for k in range(1, min(int(d.max()), 4) + 1):
        print(f"  |diff| == {k}: {100 * np.sum(d == k) / n:.4f}%")
    if d.max() > 4:
        print(f"  |diff| > 4: {100 * np.sum(d > 4) / n:.5f}%")
    mse = np.mean(d.astype(np.float64) ** 2)
    print(f"PSNR ours vs pillow: {10 * np.log10(255 ** 2 / mse) if mse > 0 else float('inf'):.1f} dB")
    same = np.all(d.reshape(len(a), -1) <= 1, axis=1)
    print(f"images with every value within 1: {100 * np.mean(same):.2f}%")


if __name__ == "__main__":
    main()
