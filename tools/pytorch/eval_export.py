#!/usr/bin/env python3
"""Evaluate a `repro export --format safetensors` file in plain PyTorch on an ffrepro
dataset split, to check that PyTorch reproduces `repro eval`'s accuracies.

    python tools/pytorch/eval_export.py model.safetensors --data data/fashion-mnist \
        [--split test] [--batch 256] [--limit N] [--threads 1] [--json out.json]

Prints the top-1 of the predictor and of every layer's readout, as correct / total.
See README.md in this folder for what is supported.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class UsageError(Exception):
    """A problem with the inputs, reported as one line without a traceback."""


# ---------------------------------------------------------------------------------------
# Loading


def load_export(path):
    """(metadata dict with JSON values decoded, state dict) of an export file."""
    import ffrepro_vgg
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not os.path.exists(path):
        raise UsageError(f"{path} does not exist.")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory; pass the .safetensors file written by `repro export`.")
    try:
        with safe_open(path, framework="pt") as f:
            raw = f.metadata()
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise UsageError(f"{path} is not a readable safetensors file ({e}).") from None
    try:
        meta = ffrepro_vgg.parse_metadata(raw)
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None
    return meta, state


# ---------------------------------------------------------------------------------------
# Data


def read_split(data_dir, split, label_key, limit=None):
    """(images uint8 (n, H, W, C), labels int64 (n,), index.json) of one split."""
    import h5py

    index_path = os.path.join(data_dir, "index.json")
    if not os.path.isdir(data_dir):
        raise UsageError(f"--data {data_dir} is not a directory; pass the folder `repro prep` wrote.")
    if not os.path.exists(index_path):
        raise UsageError(f"{data_dir} has no index.json: it is not a finished ffrepro dataset (run `repro prep`).")
    with open(index_path) as f:
        index = json.load(f)
    if index.get("format") != "ffrepro-dataset":
        raise UsageError(f"{index_path} is not an ffrepro dataset index (format {index.get('format')!r}).")
    splits = index.get("splits", {})
    if split not in splits:
        raise UsageError(f"{data_dir} has no {split!r} split; it has {', '.join(sorted(splits))}.")
    images, labels, have = [], [], 0
    for shard in splits[split]["shards"]:
        if limit is not None and have >= limit:
            break
        path = os.path.join(data_dir, shard["file"])
        with h5py.File(path, "r") as h:
            if label_key not in h:
                raise UsageError(f"{path} has no {label_key!r} dataset (config labels = {label_key!r}).")
            take = len(h["labels"]) if limit is None else min(len(h["labels"]), limit - have)
            images.append(np.asarray(h["images"][:take]))
            labels.append(np.asarray(h[label_key][:take]).astype(np.int64))
            have += take
    if not images:
        raise UsageError(f"the {split!r} split of {data_dir} has no images.")
    return np.concatenate(images), np.concatenate(labels), index


def _triangle_weights(n_src, n_dst):
    """(n_dst, n_src) weights of ffrepro's resampler along one axis: a triangle filter whose
    radius is max(1, n_src/n_dst), centred at (j + 0.5) * scale, normalised over the
    pixels inside the image (PIL's BILINEAR; linear interpolation when enlarging)."""
    scale = n_src / n_dst
    radius = max(1.0, scale)
    w = np.zeros((n_dst, n_src), dtype=np.float64)
    for j in range(n_dst):
        center = (j + 0.5) * scale
        for i in range(max(0, int(np.floor(center - radius))), min(n_src, int(np.ceil(center + radius)))):
            d = abs(i + 0.5 - center) / radius
            w[j, i] = 1 - d if d < 1 else 0
        s = w[j].sum()
        if s > 0:
            w[j] /= s
        else:
            w[j, 0 if center < 0 else n_src - 1] = 1
    return w.astype(np.float32)


def resize_images(images, size, method):
    """Square resize of uint8 (n, H, W, C) images to (n, size, size, C)."""
    n, h, w, c = images.shape
    if method == "pil":
        from PIL import Image
        out = np.empty((n, size, size, c), dtype=np.uint8)
        for k in range(n):
            img = Image.fromarray(images[k, :, :, 0], "L") if c == 1 else Image.fromarray(images[k], "RGB")
            r = np.asarray(img.resize((size, size), Image.BILINEAR))
            out[k] = r.reshape(size, size, c)
        return out
    # "ffrepro": float separable filter, vertical pass first, rounded once (no uint8 in between).
    wy, wx = _triangle_weights(h, size), _triangle_weights(w, size)
    x = images.astype(np.float32)
    x = np.einsum("yh,nhwc->nywc", wy, x)
    x = np.einsum("xw,nywc->nyxc", wx, x)
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def input_pipeline(images, meta, resize_method="pil"):
    """uint8 (n, H, W, C) stored images -> float32 (n, C, H, W) network inputs, as ffrepro's
    evaluation loader makes them (resize, evaluation crop = identity, input scaling)."""
    import ffrepro_vgg

    config = meta["config"]
    dataset = meta.get("dataset") or {}
    n, h, w, c = images.shape
    if dataset.get("image_size") and list(dataset["image_size"]) != [h, w, c]:
        raise UsageError(f"the data's images are {[h, w, c]} but the model was trained on {dataset['image_size']} "
                         f"({dataset.get('name')}); pass the dataset it was trained on.")
    augment = config.get("augment") or "none"
    if augment == "rrc-flip":
        raise ffrepro_vgg.UnsupportedExport("config augment = 'rrc-flip' (its evaluation resizes to size/0.875 and "
                                            "center-crops) is not implemented here.")
    resize = config.get("resize")
    if resize is not None and (resize != h or resize != w):
        images = resize_images(images, int(resize), resize_method)
        h = w = int(resize)
    input_size = config.get("input_size")
    if input_size is not None and (input_size != h or input_size != w):
        raise ffrepro_vgg.UnsupportedExport(f"config input_size = {input_size} differs from the (resized) image size "
                                            f"{h}x{w}; the evaluation crop/resize for that is not implemented here.")
    if list(meta["input_shape"]) != [c, h, w]:
        raise UsageError(f"the network reads {meta['input_shape']} but the pipeline gives {[c, h, w]}.")
    x = images.transpose(0, 3, 1, 2)  # NCHW uint8
    norm = config.get("input_norm") or "standardize"
    if norm == "standardize":
        # ffrepro: a per-channel lookup table pixel * 1/(255 std) - mean/std, in float32.
        mean, std = dataset.get("channel_mean"), dataset.get("channel_std")
        if not mean or not std or len(mean) != c or len(std) != c:
            raise UsageError("the export's dataset metadata lacks channel_mean/channel_std for standardize.")
        scale = np.array([1 / (255 * s) for s in std], dtype=np.float32).reshape(1, c, 1, 1)
        bias = np.array([-m / s for m, s in zip(mean, std)], dtype=np.float32).reshape(1, c, 1, 1)
        return x.astype(np.float32) * scale + bias
    if norm == "rms-scale":
        eps = np.float32(config.get("rms_eps", 1.9287498479639178e-22))
        x = x.astype(np.float32) * np.float32(1 / 255)
        rms = np.sqrt((x.astype(np.float64) ** 2).reshape(n, -1).mean(1)).astype(np.float32) + eps
        return x / rms.reshape(n, 1, 1, 1)
    raise ffrepro_vgg.UnsupportedExport(f"config input_norm = {norm!r} is not supported (standardize, rms-scale).")


# ---------------------------------------------------------------------------------------
# Evaluation


def evaluate(model, images, labels, meta, batch, resize_method="pil"):
    """(predictor correct or None, [readout correct]) over stored uint8 images, preprocessed
    batch by batch."""
    import torch

    head_correct, readout_correct = None, None
    with torch.no_grad():
        for s in range(0, len(images), batch):
            xb = torch.from_numpy(np.ascontiguousarray(input_pipeline(images[s:s + batch], meta, resize_method)))
            yb = torch.from_numpy(labels[s:s + batch])
            logits, readouts = model(xb)
            if readout_correct is None:
                readout_correct = [0] * len(readouts)
            for k, r in enumerate(readouts):
                readout_correct[k] += int((r.argmax(1) == yb).sum())
            if logits is not None:
                head_correct = (head_correct or 0) + int((logits.argmax(1) == yb).sum())
    return head_correct, readout_correct or []


def predictor_name(config):
    pred = config.get("pred", "fusion")
    return {"best": "Best Pred", "goodness-mean": "Mean goodness of the readouts",
            "goodness-last": "Goodness of the last readout", "goodness-logistic": "Logistic Fusion of the readouts",
            "last": "Last Pred"}.get(pred, "Fused classifier (BN+Linear)" if config.get("fusion_batch_norm")
                                     else "Fusion Pred")


def compare(path, total, labels_r, readout_correct, name, head_correct):
    """Side-by-side table against a `repro eval --out` record (percentages with two decimals,
    turned back into image counts)."""
    with open(path) as f:
        rec = json.load(f)
    images = rec.get("images")
    if images != total:
        raise ValueError(f"it covers {images} images, this evaluation {total} (use the same split, no --limit; "
                         "`repro eval --subset` takes a seeded sample)")
    count = lambda p: None if p is None else round(p * images / 100)
    rows = [(r["label"], count(r.get("top1_pct"))) for r in rec.get("readouts", [])]
    if [lab for lab, _ in rows] != labels_r:
        raise ValueError(f"its readouts are {[lab for lab, _ in rows]}, this model's {labels_r}")
    ours = list(zip(labels_r, readout_correct))
    if head_correct is not None:
        rows.append((rec.get("predictor", "predictor"), count(rec.get("top1_pct"))))
        ours.append((name, head_correct))
    exact = images <= 10000   # two decimals of a percentage pin down the count up to 10 000 images
    print(f"\ncompared with {path} ({images} images{'' if exact else '; repro counts rounded from percentages'}):")
    width = max(len(lab) for lab, _ in rows)
    print(f"  {'':<{width}}  {'repro eval':>16}  {'PyTorch':>16}  {'diff':>5}")
    for (lab, theirs), (_, mine) in zip(rows, ours):
        diff = "-" if theirs is None else f"{mine - theirs:+d}"
        t = "-" if theirs is None else f"{theirs} ({100 * theirs / images:.2f}%)"
        print(f"  {lab:<{width}}  {t:>16}  {f'{mine} ({100 * mine / images:.2f}%)':>16}  {diff:>5}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Evaluate a `repro export` safetensors file in PyTorch.")
    ap.add_argument("file", help="the .safetensors file written by `repro export --format safetensors`")
    ap.add_argument("--data", required=True, help="ffrepro dataset directory (index.json + shards)")
    ap.add_argument("--split", default="test", help="test, val or train (default test)")
    ap.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    ap.add_argument("--limit", type=int, help="evaluate the first N images of the split only "
                    "(not the same images as `repro eval --subset N`, which takes a seeded sample)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--best-layer", type=int, help="pred = best: the 1-based readout that predicts "
                    "(ffrepro picks it on validation; default: the readout best on this split, reported as such)")
    ap.add_argument("--resize-impl", choices=["pil", "ffrepro"], default="pil",
                    help="how config `resize` is done: PIL BILINEAR on uint8 (default), or a float "
                         "re-implementation of ffrepro's resampler (rounded once, as `repro eval` does)")
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--compare", metavar="EVAL_JSON",
                    help="the record of `repro eval --out EVAL_JSON` for the same checkpoint and split: "
                         "print both side by side, in images")
    args = ap.parse_args(argv)

    try:
        import torch
        import ffrepro_vgg
    except ImportError as e:
        print(f"error: {e}. Install: pip install torch safetensors h5py pillow numpy", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    if args.split not in ("test", "val", "train"):
        print(f"error: --split {args.split!r} is not one of: test, val, train.", file=sys.stderr)
        return 2
    if args.batch < 1 or (args.limit is not None and args.limit < 1):
        print("error: --batch and --limit must be at least 1.", file=sys.stderr)
        return 2

    try:
        meta, state = load_export(args.file)
        config = meta["config"]
        model = ffrepro_vgg.build_model(meta)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise UsageError(f"{args.file} does not match the network its config describes:\n{e}") from None
        model.eval()
        t0 = time.time()
        images, labels, index = read_split(args.data, args.split, config.get("labels") or "labels", args.limit)
        ds = meta.get("dataset") or {}
        if ds.get("name") and index.get("dataset") != ds["name"]:
            print(f"note: {args.data} holds {index.get('dataset')!r}, the model was trained on {ds['name']!r}",
                  file=sys.stderr)
        if ds.get("fingerprint") and index.get("conversion", {}).get("fingerprint") not in (None, ds["fingerprint"]):
            print(f"note: {args.data} is another conversion than the one the model was trained on "
                  "(fingerprints differ)", file=sys.stderr)
        t1 = time.time()
        head_correct, readout_correct = evaluate(model, images, labels, meta, args.batch, args.resize_impl)
        t2 = time.time()
    except ffrepro_vgg.UnsupportedExport as e:
        print(f"error: not supported: {e}", file=sys.stderr)
        return 3
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    total = len(labels)
    pct = lambda k: 100.0 * k / total
    labels_r = model.readout_labels
    pred = config.get("pred", "fusion")
    best = None
    if pred == "best" and readout_correct:
        if args.best_layer is None and str(meta.get("best_readout", "")).isdigit():
            args.best_layer = int(meta["best_readout"])   # if a later export records ffrepro's choice
            how_given = "the export's best_readout"
        elif args.best_layer is None and args.compare:
            try:
                with open(args.compare) as f:
                    args.best_layer = json.load(f).get("best_pred_readout")
            except (OSError, ValueError):
                pass
            how_given = f"the Best Pred readout of {args.compare}"
        else:
            how_given = "given by --best-layer"
        if args.best_layer is not None:
            if not 1 <= args.best_layer <= len(readout_correct):
                print(f"error: --best-layer {args.best_layer} is outside 1...{len(readout_correct)}.", file=sys.stderr)
                return 2
            best, how = args.best_layer, how_given
        else:
            best = max(range(len(readout_correct)), key=lambda k: (readout_correct[k], -k)) + 1
            how = f"best on this {args.split} split (ffrepro picks it on validation; pass --best-layer)"
        head_correct = readout_correct[best - 1]

    name = predictor_name(config)
    print(f"{os.path.basename(args.file)}: {config.get('name')} ({config.get('arch')}), {args.split} split of "
          f"{args.data}, {total} images (read {t1 - t0:.1f} s, preprocess + network {t2 - t1:.1f} s)")
    width = max([len(name)] + [len(s) for s in labels_r])
    for lab, k in zip(labels_r, readout_correct):
        print(f"  {lab:<{width}}  {pct(k):6.2f}%  ({k} / {total})")
    if head_correct is not None:
        extra = f"  [{labels_r[best - 1]}, {how}]" if best else ""
        print(f"  {name:<{width}}  {pct(head_correct):6.2f}%  ({head_correct} / {total}){extra}")

    if args.compare:
        try:
            compare(args.compare, total, labels_r, readout_correct, name, head_correct)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: cannot compare with {args.compare}: {e}", file=sys.stderr)
            return 2

    if args.json:
        record = {
            "file": os.path.abspath(args.file),
            "recipe": config.get("name"),
            "arch": config.get("arch"),
            "data": os.path.abspath(args.data),
            "dataset": index.get("dataset"),
            "split": args.split,
            "images": total,
            "resize_impl": args.resize_impl,
            "predictor": name,
            "predictor_correct": head_correct,
            "predictor_top1_pct": None if head_correct is None else pct(head_correct),
            "best_readout": best,
            "readouts": [{"label": lab, "correct": k, "top1_pct": pct(k)} for lab, k in zip(labels_r, readout_correct)],
            "torch_version": torch.__version__,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
