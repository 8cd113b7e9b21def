#!/usr/bin/env python3
"""A plain Pillow + h5py image-folder converter: the reference that `repro prep imagefolder`
is timed against (run by hand; see tools/bench/README.md).

    python3 tools/bench/pillow_prep.py --src ROOT --out DIR --size 256 [--workers 2]

It writes what `repro prep imagefolder --src ROOT --size N --val 0` writes into the train
split: shards of at most --shard-mb MiB of uint8 NHWC `images` and int32 `labels`, chunked
like ours, with the class list, so the pixels can be compared one by one
(tools/bench/compare_prep.py). Same semantics as ours:

- classes are the sorted folder names, files sorted byte-wise, searched recursively;
- JPEG: `draft()` picks libjpeg's DCT scale 1/2, 1/4 or 1/8 exactly as we do (the largest
  power of two s <= 8 with shorter side >= s * size), then RGB;
- PNG (and everything else): `convert("RGB")` (gray replicated, alpha dropped);
- the shorter side is resized to `size` (longer side rounded), the centre size x size is
  cropped (offset rounded down), both as one BILINEAR resample of the source box; Pillow's
  BILINEAR widens its triangle filter by the reduction factor, like ours.

Pillow rounds to uint8 between the horizontal and the vertical pass and uses fixed-point
weights; we keep float between passes, so a few pixels differ by 1 (compare_prep.py prints
the histogram).
"""
import argparse
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import h5py
import numpy as np
from PIL import Image

EXTENSIONS = {".png", ".jpg", ".jpeg"}


def box(sw, sh, size):
    """Source rectangle (x0, y0, x1, y1) that ffio_resize_center_crop resamples."""
    def lround(v):
        return int(math.floor(v + 0.5))
    x0, y0, rw, rh = 0.0, 0.0, float(sw), float(sh)
    if sw <= sh:
        nh = max(lround(sh * size / sw), size)
        sy = sh / nh
        y0 = ((nh - size) // 2) * sy
        rh = size * sy
    else:
        nw = max(lround(sw * size / sh), size)
        sx = sw / nw
        x0 = ((nw - size) // 2) * sx
        rw = size * sx
    return (x0, y0, x0 + rw, y0 + rh)


def prepare(job):
    path, size = job
    try:
        im = Image.open(path)
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        im = im.convert("RGB")
        out = im.resize((size, size), Image.BILINEAR, box=box(im.width, im.height, size))
        return np.asarray(out), None
    except Exception as e:  # a bad file is skipped and reported, like ours
        return None, f"{type(e).__name__}: {e}"


def listing(root):
    classes = sorted((d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d))),
                     key=lambda s: s.encode())
    items = []
    for label, c in enumerate(classes):
        files = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, c)):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS:
                    files.append(os.path.relpath(os.path.join(dirpath, f), os.path.join(root, c)))
        for f in sorted(files, key=lambda s: s.encode()):
            items.append((os.path.join(root, c, f), label))
    return classes, items


def write_shard(path, images, labels, classes, size):
    n = len(labels)
    image_bytes = size * size * 3
    with h5py.File(path, "w", track_order=False) as f:
        chunk = (max(1, min(n, 65536 // image_bytes)), size, size, 3) if n else None
        f.create_dataset("images", data=np.stack(images) if n else np.zeros((0, size, size, 3), np.uint8),
                         chunks=chunk, track_times=False)
        f.create_dataset("labels", data=np.asarray(labels, np.int32), track_times=False)
        f.attrs["format"] = "pillow-h5py-reference"
        f.attrs["image_size"] = np.asarray([size, size, 3], np.int64)
        f.attrs["class_names"] = json.dumps(classes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1, help="decoding processes (1 = this process)")
    ap.add_argument("--shard-mb", type=float, default=256)
    a = ap.parse_args()
    start = time.time()
    classes, items = listing(a.src)
    os.makedirs(a.out, exist_ok=True)
    per_shard = max(1, int(a.shard_mb * 1048576) // (a.size * a.size * 3))
    jobs = [(p, a.size) for p, _ in items]
    pool = Pool(a.workers) if a.workers > 1 else None
    results = pool.imap(prepare, jobs, chunksize=16) if pool else map(prepare, jobs)
    images, labels, skipped, shard = [], [], [], 0
    for (path, label), (px, err) in zip(items, results):
        if err is not None:
            skipped.append({"path": path, "reason": err})
        else:
            images.append(px)
            labels.append(label)
        if len(images) == per_shard:
            write_shard(os.path.join(a.out, f"train-{shard:05d}.h5"), images, labels, classes, a.size)
            images, labels, shard = [], [], shard + 1
    if images or shard == 0:
        write_shard(os.path.join(a.out, f"train-{shard:05d}.h5"), images, labels, classes, a.size)
    if pool:
        pool.close()
        pool.join()
    seconds = time.time() - start
    n = len(items) - len(skipped)
    print(f"{n} images in {seconds:.2f} s = {n / seconds:.0f} images/s ({len(skipped)} skipped)")
    for s in skipped[:10]:
        print(f"  skipped {s['path']}: {s['reason']}", file=sys.stderr)


if __name__ == "__main__":
    main()
