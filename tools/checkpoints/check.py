#!/usr/bin/env python3
"""`make checkpoints-check`: evaluates every reference checkpoint listed in
checkpoints/manifest.json with `repro eval` and compares with the numbers stated there.

For each entry: the file's SHA-256 must match; the test split is evaluated in full; the
classifier's and every readout's correct-image counts must equal the stated ones on a
machine with the same arithmetic (same CPU SIMD level, OpenBLAS build and thread count as
the one that made them) and may differ by at most `tolerance_images` elsewhere (float
sums in another order flip a handful of borderline images). Exit status 1 on any failure.

Usage: check.py --bin .build/release/repro --data data [--manifest checkpoints/manifest.json]
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def correct(pct, images):
    return None if pct is None else round(pct * images / 100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=".build/release/repro")
    ap.add_argument("--data", default="data")
    ap.add_argument("--manifest", default="checkpoints/manifest.json")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    with open(args.manifest) as f:
        manifest = json.load(f)
    base = os.path.dirname(os.path.abspath(args.manifest))
    failures = 0
    for e in manifest["checkpoints"]:
        path = os.path.join(base, e["file"])
        print(f"== {e['file']} ({e['recipe']}, {e['dataset']} {e['split']})")
        if not os.path.isfile(path):
            print(f"   FAIL: {path} is missing")
            failures += 1
            continue
        digest = sha256(path)
        if digest != e["sha256"]:
            print(f"   FAIL: SHA-256 {digest} differs from the stated {e['sha256']}")
            failures += 1
            continue
        data = os.path.join(args.data, e["dataset"])
        if not os.path.isfile(os.path.join(data, "index.json")):
            print(f"   FAIL: no converted dataset in {data}; create it with: {e['prep']}")
            failures += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "eval.json")
            cmd = [args.bin, "eval", "--checkpoint", path, "--data", data, "--split", e["split"], "--out", out]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                print(f"   FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
                failures += 1
                continue
            with open(out) as f:
                got = json.load(f)
        n = got["images"]
        if n != e["images"]:
            print(f"   FAIL: evaluated {n} images, the manifest states {e['images']}")
            failures += 1
            continue
        rows = [("classifier (" + e["predictor"] + ")", e["expected"]["head_correct"], correct(got["head_top1_pct"], n))]
        for i, (want, r) in enumerate(zip(e["expected"]["readouts_correct"], got["readouts"])):
            rows.append((f"readout {i + 1}", want, correct(r["top1_pct"], n)))
        worst = 0
        for label, want, have in rows:
            diff = None if have is None or want is None else abs(have - want)
            worst = max(worst, diff if diff is not None else 10**9)
            print(f"   {label:28s} stated {want:>6} / {n}  now {have:>6} / {n}  ({'same' if diff == 0 else f'{diff} images apart'})")
        tol = e.get("tolerance_images", 5)
        if worst == 0:
            print("   OK: identical")
        elif worst <= tol:
            print(f"   OK: within {worst} images (tolerance {tol}; another machine's arithmetic)")
        else:
            print(f"   FAIL: {worst} images apart (tolerance {tol})")
            failures += 1
    print(f"{len(manifest['checkpoints']) - failures} of {len(manifest['checkpoints'])} checkpoints as stated")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
