#!/usr/bin/env python3
"""Self-test of tools/pytorch without a trained model (seconds, one thread):

1. builds tiny random models from hand-written export metadata (several configs), writes
   them as safetensors under ffrepro's names, loads them back with strict=True and checks
   the output shapes;
2. checks the spatial goodness against a direct loop over ffrepro's patch bins;
3. runs eval_export.py end to end on a tiny fake dataset, and its error messages.

    python tools/pytorch/selftest.py
"""

import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ffrepro_vgg  # noqa: E402
import eval_export  # noqa: E402

torch.set_num_threads(1)

BASE_CONFIG = {
    "name": "selftest", "arch": "custom", "channels": [4, 8, 8], "pool_after": [1, 3], "dataset": "fake",
    "conv_norm": "none", "inter_layer_norm": "rms-scale", "pool": "rms", "pool_size": 2, "alpha": 1,
    "pred": "fusion", "fusion_head": "per-layer-sum", "head_input": "output", "input_norm": "rms-scale",
    "resize": 12, "augment": "flip", "decoupled_norm": True, "ln_eps": 1e-5, "ln_affine": False,
    "rms_eps": 1.9287498479639178e-22, "learn_temperature": False, "goodness_bins": "adaptive",
    "blocks": "per-unit", "local_loss": "spatial-goodness", "local_loss_at": "block-output",
    "fusion_batch_norm": False, "labels": "labels",
}


def metadata(config, input_shape=(1, 12, 12), classes=3, stored=(10, 10, 1)):
    channels = config["channels"] + ([config["channels"][-1]] if config["pred"] == "best" else [])
    return {
        "format": "ffrepro-export", "format_version": "1", "config": json.dumps(config),
        "input_shape": json.dumps(list(input_shape)), "class_names": json.dumps([f"c{k}" for k in range(classes)]),
        "dataset": json.dumps({"name": "fake", "image_size": list(stored), "channel_mean": [0.3] * stored[2],
                               "channel_std": [0.25] * stored[2], "fingerprint": ""}),
        "arch_channels": json.dumps(channels), "arch_pool_after": json.dumps(config["pool_after"]),
    }


def random_state(model, seed=0):
    """Random values under the model's own names (as an export would hold them)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in model.state_dict().items():
        if name.endswith("running_var"):
            out[name] = torch.rand(t.shape, generator=g) + 0.5
        elif name.endswith("num_batches_tracked"):
            continue
        else:
            out[name] = torch.randn(t.shape, generator=g) * 0.3
    return out


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("  ok ", what)


def test_models(tmp):
    print("models:")
    variants = {
        "asge-like (rms, per-layer-sum, output)": {},
        "layernorm affine, concat, tap, BN head, avg pool": {
            "inter_layer_norm": "layernorm", "ln_affine": True, "fusion_head": "concat", "head_input": "tap",
            "fusion_batch_norm": True, "pool": "avg", "learn_temperature": True},
        "conv_norm batch, max pool, last": {"conv_norm": "batch", "pool": "max", "pred": "last"},
        "best pred, floor bins": {"pred": "best", "goodness_bins": "floor"},
        "whole block, every-unit, goodness-logistic, block_norm": {
            "blocks": "whole", "local_loss_at": "every-unit", "pred": "goodness-logistic", "block_norm": "layernorm"},
        "coupled layernorm, goodness-mean": {"decoupled_norm": False, "inter_layer_norm": "layernorm",
                                             "pred": "goodness-mean"},
        "vgg8 layout": {"arch": "vgg8", "pool_after": [2, 4, 5, 6], "channels": None},
    }
    for label, change in variants.items():
        config = dict(BASE_CONFIG, **change)
        if config["arch"] == "vgg8":
            config["channels"] = ffrepro_vgg.VGG_SPECS["vgg8"][0]
            meta = metadata(config, input_shape=(1, 32, 32))
            meta["arch_channels"] = json.dumps(config["channels"])
            config = dict(config, channels=None)
            meta["config"] = json.dumps(config)
            shape = (2, 1, 32, 32)
        else:
            meta = metadata(config)
            shape = (2, 1, 12, 12)
        model = ffrepro_vgg.build_model(meta)
        path = os.path.join(tmp, "m.safetensors")
        save_file(random_state(model), path, metadata=meta)
        meta2, state = eval_export.load_export(path)
        model2 = ffrepro_vgg.build_model(meta2)
        model2.load_state_dict(state, strict=True)
        model2.eval()
        with torch.no_grad():
            logits, readouts = model2(torch.rand(shape))
        n_layers = len(json.loads(meta["arch_channels"]))
        expected_readouts = n_layers if config["local_loss_at"] == "every-unit" or config["blocks"] == "per-unit" else 1
        ok = len(readouts) == expected_readouts and all(r.shape == (2, 3) for r in readouts)
        ok = ok and (logits is None if config["pred"] == "best" else logits.shape == (2, 3))
        ok = ok and all(torch.isfinite(r).all() for r in readouts)
        check(ok, f"{label}: {len(readouts)} readouts, head {None if logits is None else tuple(logits.shape)}, "
                  f"{len(state)} tensors load strictly")
        if config["arch"] == "vgg8":
            parts = [u.local.partition for u in model2.units]
            check(parts == [4, 2, 2, 1, 1, 1, 1], f"vgg8 partitions at 32x32 are {parts} (ASGE: 4 2 2 1 1 1 1)")

    # A missing and an unexpected tensor are errors of strict loading.
    model = ffrepro_vgg.build_model(metadata(BASE_CONFIG))
    state = random_state(model)
    state.pop("units.0.local.readout.bias")
    try:
        model.load_state_dict(state, strict=True)
        check(False, "strict load refuses a missing tensor")
    except RuntimeError:
        check(True, "strict load refuses a missing tensor")


def test_goodness():
    print("goodness:")
    torch.manual_seed(0)
    for (h, w, p, bins) in [(7, 7, 3, "adaptive"), (8, 6, 4, "adaptive"), (7, 9, 3, "floor"), (5, 5, 5, "adaptive")]:
        y = torch.rand(2, 3, h, w)
        g = ffrepro_vgg.spatial_goodness(y, p, bins).view(2, 3, p, p)

        def edges(n, i):
            if bins == "adaptive":
                return (i * n) // p, -((-(i + 1) * n) // p)
            k = n // p
            return i * k, (i + 1) * k

        ref = torch.zeros(2, 3, p, p)
        for i in range(p):
            r0, r1 = edges(h, i)
            for j in range(p):
                c0, c1 = edges(w, j)
                ref[:, :, i, j] = (y[:, :, r0:r1, c0:c1] ** 2).mean((2, 3))
        check(torch.allclose(g, ref, atol=1e-6), f"{bins} bins {h}x{w}, P={p}")
    check(ffrepro_vgg.goodness_partition(1, 512, 128, 32, 32) == 4 and
          ffrepro_vgg.goodness_partition(1, 512, 512, 4, 4) == 1 and
          ffrepro_vgg.goodness_partition(4, 512, 64, 2, 2) == 2, "partition P = min(max(1, floor(a C_L / C)), H, W)")


def test_resize():
    print("resize:")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(20, 28, 28, 1), dtype=np.uint8)
    a = eval_export.resize_images(img, 32, "pil").astype(int)
    b = eval_export.resize_images(img, 32, "ffrepro").astype(int)
    d = np.abs(a - b)
    check(d.max() <= 1, f"PIL vs ffrepro resampler 28->32: max difference {d.max()}, "
                        f"{(d > 0).mean() * 100:.1f}% of values differ")
    same = eval_export.resize_images(img[:, :8, :8], 8, "ffrepro")
    check(np.array_equal(same, img[:, :8, :8]), "resampling to the same size is the identity")


def write_fake_dataset(root, n=50, size=10, classes=3):
    import h5py
    rng = np.random.default_rng(1)
    os.makedirs(root, exist_ok=True)
    with h5py.File(os.path.join(root, "test-00000.h5"), "w") as h:
        h["images"] = rng.integers(0, 256, size=(n, size, size, 1), dtype=np.uint8)
        h["labels"] = rng.integers(0, classes, size=n).astype(np.int32)
    index = {"format": "ffrepro-dataset", "format_version": 1, "dataset": "fake", "image_size": [size, size, 1],
             "channel_mean": [0.3], "channel_std": [0.25],
             "splits": {"test": {"count": n, "shards": [{"file": "test-00000.h5", "count": n}]}}}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)


def run_cli(*args):
    p = subprocess.run([sys.executable, os.path.join(HERE, "eval_export.py"), *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def test_cli(tmp):
    print("eval_export.py:")
    data = os.path.join(tmp, "fake")
    write_fake_dataset(data)
    model = ffrepro_vgg.build_model(metadata(BASE_CONFIG))
    path = os.path.join(tmp, "m.safetensors")
    save_file(random_state(model), path, metadata=metadata(BASE_CONFIG))
    out_json = os.path.join(tmp, "r.json")
    rc, out = run_cli(path, "--data", data, "--batch", "16", "--json", out_json)
    rec = json.load(open(out_json)) if rc == 0 else {}
    check(rc == 0 and rec.get("images") == 50 and len(rec.get("readouts", [])) == 3
          and rec.get("predictor_correct") is not None, "runs on a fake dataset and writes JSON")
    # Batch size does not change the counts.
    rc2, out2 = run_cli(path, "--data", data, "--batch", "7", "--json", out_json + "2")
    rec2 = json.load(open(out_json + "2")) if rc2 == 0 else {}
    check(rec2.get("readouts") == rec.get("readouts") and rec2.get("predictor_correct") == rec.get("predictor_correct"),
          "same counts with another batch size")

    fake_eval = os.path.join(tmp, "eval.json")
    with open(fake_eval, "w") as f:
        json.dump({"images": 50, "predictor": "Fusion Pred", "top1_pct": 100 * (rec["predictor_correct"] + 1) / 50,
                   "readouts": [{"label": r["label"], "top1_pct": r["top1_pct"]} for r in rec["readouts"]]}, f)
    rc, out = run_cli(path, "--data", data, "--compare", fake_eval)
    check(rc == 0 and out.count("+0") == 3 and "-1" in out, "--compare prints the differences in images")

    rc, out = run_cli(os.path.join(tmp, "nope.safetensors"), "--data", data)
    check(rc == 2 and "does not exist" in out, "missing file: " + out.strip().splitlines()[-1])
    bad = os.path.join(tmp, "plain.safetensors")
    save_file({"w": torch.zeros(2)}, bad, metadata={"format": "pt"})
    rc, out = run_cli(bad, "--data", data)
    check(rc == 2 and "ffrepro-export" in out, "not an export: " + out.strip().splitlines()[-1])
    junk = os.path.join(tmp, "junk.safetensors")
    open(junk, "wb").write(b"hello world, not a safetensors file")
    rc, out = run_cli(junk, "--data", data)
    check(rc == 2 and "not a readable safetensors" in out, "garbage file: " + out.strip().splitlines()[-1])
    cfg = dict(BASE_CONFIG, local_loss="class-goodness")
    save_file({"w": torch.zeros(2)}, bad, metadata=metadata(cfg))
    rc, out = run_cli(bad, "--data", data)
    check(rc == 3 and "local_loss" in out, "unsupported value named: " + out.strip().splitlines()[-1])
    cfg = dict(BASE_CONFIG, arch="resnet18")
    save_file({"w": torch.zeros(2)}, bad, metadata=metadata(cfg))
    rc, out = run_cli(bad, "--data", data)
    check(rc == 3 and "resnet18" in out, "unsupported arch named: " + out.strip().splitlines()[-1])
    state = random_state(model)
    state["units.0.conv.weight"] = torch.zeros(5, 1, 3, 3)
    save_file(state, bad, metadata=metadata(BASE_CONFIG))
    rc, out = run_cli(bad, "--data", data)
    check(rc == 2 and "size mismatch" in out, "tensor of the wrong shape is reported")
    rc, out = run_cli(path, "--data", os.path.join(tmp, "nodata"))
    check(rc == 2 and "not a directory" in out, "missing dataset: " + out.strip().splitlines()[-1])
    rc, out = run_cli(path, "--data", data, "--split", "val")
    check(rc == 2 and "no 'val' split" in out, "missing split: " + out.strip().splitlines()[-1])


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_goodness()
        test_resize()
        test_models(tmp)
        test_cli(tmp)
    print("all passed")


if __name__ == "__main__":
    main()
