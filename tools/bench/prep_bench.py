#!/usr/bin/env python3
"""Data-prep speed: `repro prep imagefolder` against the Pillow + h5py converter
(pillow_prep.py) on the same images, runs alternated, min / median / max (run by hand).

    python3 tools/bench/prep_bench.py --repro .build/release/repro --work /tmp/prepbench --repeat 5

Makes the two image trees if absent (make_images.py: 2000 JPEGs 400x300 -> --size 256, 2000
gray PNGs 300x300 -> --size 64), then for each kind runs, in turn: ours with --threads 1 and
2, Pillow with 1 and 2 worker processes. Wall seconds are what a user waits; CPU seconds
(user + sys of the process and its children) are less sensitive to other load on a shared
machine. Images/s = 2000 / wall.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repro", default=".build/release/repro")
    ap.add_argument("--work", default="/tmp/prepbench")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--kinds", default="jpeg,png")
    a = ap.parse_args()
    py = sys.executable
    kinds = {"jpeg": (["jpeg", "--width", "400", "--height", "300"], 256),
             "png": (["png", "--width", "300", "--height", "300", "--gray"], 64)}
    results = {}
    for kind in a.kinds.split(","):
        args, size = kinds[kind]
        src = os.path.join(a.work, f"src-{kind}")
        if not os.path.isdir(src):
            subprocess.run([py, os.path.join(HERE, "make_images.py"), args[0], src, "--count", str(a.count)] + args[1:],
                           check=True)
        out = os.path.join(a.work, "out")
        configs = [
            (f"repro --threads {t}", [a.repro, "prep", "imagefolder", "--src", src, "--size", str(size), "--val", "0",
                                      "--quiet", "--threads", str(t), "--out", out]) for t in (1, 2)
        ] + [
            (f"pillow --workers {w}", [py, os.path.join(HERE, "pillow_prep.py"), "--src", src, "--size", str(size),
                                       "--workers", str(w), "--out", out]) for w in (1, 2)
        ]
        for r in range(a.repeat):
            for name, cmd in configs:
                shutil.rmtree(out, ignore_errors=True)
                wall, cpu = timed(cmd)
                results.setdefault((kind, name), []).append((wall, cpu))
                print(f"{kind} {name} run {r + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
        shutil.rmtree(out, ignore_errors=True)

    def mmm(xs):
        return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f}"
    print("\n| input | converter | wall s (min / median / max) | images/s (median) | CPU s (min / median / max) |")
    print("|---|---|---|---|---|")
    for (kind, name), runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        print(f"| {kind} | {name} | {mmm(walls)} | {a.count / statistics.median(walls):.0f} | {mmm(cpus)} |")
    print("\nratios of medians (Pillow / ours):")
    for kind in a.kinds.split(","):
        def med(name, i):
            return statistics.median(x[i] for x in results[(kind, name)])
        p1, p2 = med("pillow --workers 1", 0), med("pillow --workers 2", 0)
        o1, o2 = med("repro --threads 1", 0), med("repro --threads 2", 0)
        c1, co1 = med("pillow --workers 1", 1), med("repro --threads 1", 1)
        print(f"  {kind}: 1 thread vs 1 process {p1 / o1:.2f}x; 2 threads vs 1 process {p1 / o2:.2f}x; "
              f"2 threads vs 2 processes {p2 / o2:.2f}x; CPU per image {c1 / co1:.2f}x")


if __name__ == "__main__":
    main()
