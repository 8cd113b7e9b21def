#!/usr/bin/env python3
"""Equivalence table: ffrepro runs against the authors' code on the same split.

    compare.py --ffrepro SWEEP_DIR --authors AUTHORS_RUN_DIR [AUTHORS_RUN_DIR ...] [--label NAME]

SWEEP_DIR is a `repro sweep` folder (seed-<S>/results.json); each AUTHORS_RUN_DIR holds the
result.json written by run_authors.py. Prints per-seed test accuracy (the Fusion
classifier), mean and sample standard deviation of each side, the difference of the means,
the pooled standard deviation, and the verdict: the two agree when the means differ by
less than 2 pooled standard deviations or by less than 0.3 points.
"""
import argparse
import glob
import json
import math
import os
import statistics


def ffrepro_runs(sweep):
    """seed -> (test %, images, per-epoch validation % of the classifier)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(sweep, "seed-*", "results.json"))):
        with open(path) as f:
            r = json.load(f)
        with open(os.path.join(os.path.dirname(path), "metrics.jsonl")) as f:
            val = [json.loads(line)["val_head_acc_pct"] for line in f if line.strip()]
        out[r["seed"]] = (r["head_top1_pct"], r["images"], val)
    return out


def authors_runs(dirs):
    out = {}
    for d in dirs:
        with open(os.path.join(d, "result.json")) as f:
            r = json.load(f)
        if r.get("status") != "finished" and r.get("test_acc_unrounded") is None:
            continue
        acc = r.get("test_acc_unrounded") or r.get("test_acc")
        out[r["seed"]] = (acc, r["test_images"], [e["valid_acc"] for e in r.get("epoch_results", [])])
    return out


def summary(values):
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ffrepro", required=True)
    ap.add_argument("--authors", nargs="+", required=True)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    ours, theirs = ffrepro_runs(a.ffrepro), authors_runs(a.authors)
    seeds = sorted(set(ours) | set(theirs))
    print(f"### {a.label}\n")
    print("| seed | ffrepro test % (Fusion) | released code test % |")
    print("|---|---:|---:|")
    for s in seeds:
        o, t = ours.get(s), theirs.get(s)
        print(f"| {s} | {fmt(o[0]) if o else 'not run'} | {fmt(t[0]) if t else 'not run'} |")
    epochs = max([len(v[2]) for v in list(ours.values()) + list(theirs.values())] or [0])
    if epochs:
        print("\nvalidation % of the classifier after each epoch, mean over seeds (ffrepro / released code; "
              "the code's validation images carry its training transform):\n")
        print("| epoch | ffrepro | released code |")
        print("|---|---:|---:|")
        for e in range(epochs):
            mine = [v[2][e] for v in ours.values() if len(v[2]) > e]
            code = [v[2][e] for v in theirs.values() if len(v[2]) > e]
            print(f"| {e + 1} | {fmt(summary(mine)[0])} | {fmt(summary(code)[0])} |")
        print()
    mo, so = summary([v[0] for v in ours.values()])
    mt, st = summary([v[0] for v in theirs.values()])
    print(f"| mean ± std | {fmt(mo)} ± {fmt(so)} (n={len(ours)}) | {fmt(mt)} ± {fmt(st)} (n={len(theirs)}) |")
    if mo is None or mt is None:
        print("\nverdict: not testable yet (one side has no finished run)")
        return
    diff = mo - mt
    if so is not None and st is not None:
        pooled = math.sqrt(((len(ours) - 1) * so ** 2 + (len(theirs) - 1) * st ** 2) / (len(ours) + len(theirs) - 2))
    else:
        pooled = None
    agree = abs(diff) < 0.3 or (pooled is not None and abs(diff) < 2 * pooled)
    if agree:
        verdict = "agree"
    elif pooled is None:
        verdict = "not testable: one seed on a side gives no spread to test the difference against"
    else:
        verdict = "DISAGREE"
    print(f"\ndifference of means (ffrepro - code): {diff:+.2f} points; pooled std {fmt(pooled)}; "
          f"verdict: {verdict} (agree: |diff| < 2 pooled std or < 0.3)")


if __name__ == "__main__":
    main()
