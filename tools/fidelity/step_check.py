#!/usr/bin/env python3
"""One training step of ffrepro and of the ASGE authors' released code from the same
weights on the same batch: per-layer losses and every parameter's gradient compared.

    step_check.py --authors DIR --repro .build/release/repro --data data/fashion-mnist \
        --checkpoint CKPT.h5 [--recipe asge-fmnist-code] [--batch 128] [--out WORK]

CKPT is any ffrepro checkpoint of the recipe (its weights and fixed readouts are the
starting point of both sides). The steps:
  1. ffrepro: `repro run RECIPE --init-from CKPT --epochs 1 --subset B --batch-size B
     --set subset_seed=0 --set augment=none --set dropout=0` (one optimizer step on the B
     images ffrepro's subset picks; the gradient g of each parameter is 10 x the AdamW
     first moment the run's last.h5 stores after one step, beta1 = 0.9);
  2. the authors' VGG8 (built by their VGG8.py, imported from --authors; nothing of theirs
     is changed on disk) gets the same weights and readouts, dropout p = 0, and runs their
     training `forward` (each layer's loss, backward and AdamW step, then the Fusion
     classifier's) on the same B images, resized 28 -> 32 with ffrepro's resampler;
     gradients stay in `.grad` after their steps.
Prints, per parameter, the largest gradient difference relative to the largest gradient
entry, and the layer losses of both; exits 1 if any relative difference exceeds --tol.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "pytorch"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--authors", required=True)
    ap.add_argument("--repro", default=".build/release/repro")
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--recipe", default="asge-fmnist-code")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default="/tmp/ffrepro-step-check")
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()

    import h5py
    import torch
    import run_authors
    from eval_export import resize_images

    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    run_dir = os.path.join(a.out, "ffrepro")
    cmd = [a.repro, "run", a.recipe, "--data", a.data, "--init-from", a.checkpoint, "--epochs", "1",
           "--subset", str(a.batch), "--batch-size", str(a.batch), "--eval-subset", str(a.batch),
           "--set", "subset_seed=0", "--set", "augment=none", "--set", "dropout=0",
           "--threads", "1", "--out", run_dir, "--overwrite"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        metrics = json.loads(f.readline())
    ours = h5py.File(os.path.join(run_dir, "last.h5"), "r")
    start = h5py.File(a.checkpoint, "r")

    # The same images: ffrepro's subset rows of the train split, resized as ffrepro does.
    with open(os.path.join(a.data, "index.json")) as f:
        index = json.load(f)
    images, labels = run_authors.load_split(a.data, index, "train")
    rows = run_authors.subset_rows(len(images), a.batch, 0)
    x = resize_images(images[rows][..., None], 32, "ffrepro")[..., 0]
    imgs = torch.from_numpy(x.astype(np.float32) / 255.0)[:, None]
    labs = torch.from_numpy(labels[rows])

    sys.path.insert(0, a.authors)
    from VGG8 import VGG8   # the authors' file, as published
    model = VGG8(device=torch.device("cpu"), epochs=1, input_channel=1)
    with torch.no_grad():
        for i, block in enumerate(model.blocks):
            block.conv.weight.copy_(torch.from_numpy(start[f"params/units.{i}.conv.weight"][()]))
            block.conv.bias.copy_(torch.from_numpy(start[f"params/units.{i}.conv.bias"][()]))
            block.R1.copy_(torch.from_numpy(start[f"buffers/units.{i}.local.readout.weight"][()]))
            block.b.copy_(torch.from_numpy(start[f"buffers/units.{i}.local.readout.bias"][()]))
            block.dropout.p = 0.0
        for k, fc in enumerate(model.fc_layers):
            fc.weight.copy_(torch.from_numpy(start[f"params/head.fc.{k}.weight"][()]))
            fc.bias.copy_(torch.from_numpy(start[f"params/head.fc.{k}.bias"][()]))
    # Their per-layer losses before the step (the same forward their training does).
    losses = []
    with torch.no_grad():
        z = model._layer_norm(imgs)
        for block in model.blocks:
            y = block.relu(block.conv(z))
            logits = block.channel_spatial_goodness(y) @ block.R1 + block.b
            losses.append(torch.nn.functional.cross_entropy(logits, labs).item())
            if block.pooling:
                y = block.AvgPool(y)
            z = block._layer_norm(y)
    model.train()
    head_loss, _ = model(imgs, labs)

    print(f"one step on {a.batch} images of {a.data} from {a.checkpoint}")
    print("\nlayer losses before the step (ffrepro / released code):")
    for i, (m, t) in enumerate(zip(metrics["train_readout_loss"], losses)):
        print(f"  layer {i + 1}: {m:.6f} / {t:.6f}")
    print(f"  classifier: {metrics['train_head_loss']:.6f} / {head_loss:.6f}")

    pairs = []
    for i, block in enumerate(model.blocks):
        pairs += [(f"units.{i}.conv.weight", block.conv.weight), (f"units.{i}.conv.bias", block.conv.bias)]
    for k, fc in enumerate(model.fc_layers):
        pairs += [(f"head.fc.{k}.weight", fc.weight), (f"head.fc.{k}.bias", fc.bias)]
    worst = 0.0
    print("\ngradients: max |g_ffrepro - g_code| / max |g_code| (g_ffrepro = 10 x AdamW exp_avg after one step)")
    for name, p in pairs:
        g_ours = 10.0 * ours[f"optim/{name}.exp_avg"][()].astype(np.float64)
        g_code = p.grad.detach().numpy().astype(np.float64)
        rel = np.abs(g_ours - g_code).max() / max(np.abs(g_code).max(), 1e-30)
        worst = max(worst, rel)
        print(f"  {name:28s} {rel:.2e}   (max |g| {np.abs(g_code).max():.3e})")
    # The AdamW step itself: each parameter's change, ffrepro's against the code's. The first
    # AdamW step moves every element by about lr * sign(g) (|g| >> eps), so an element whose
    # gradient is within float noise of 0 may step either way in either implementation; the
    # comparison is made over the elements whose gradient stands clear of that noise
    # (|g| >= 1e-3 max |g|), and the others are counted.
    worst_step = 0.0
    print("\nupdates: max |dw_ffrepro - dw_code| / max |dw_code| over elements with |g| >= 1e-3 max |g| "
          "(dw = weights after the step - before); elements below that whose step differs in sign")
    for name, p in pairs:
        before = start[f"params/{name}"][()].astype(np.float64)
        dw_ours = ours[f"params/{name}"][()].astype(np.float64) - before
        dw_code = p.detach().numpy().astype(np.float64) - before
        g = np.abs(p.grad.detach().numpy().astype(np.float64))
        clear = g >= 1e-3 * g.max()
        rel = np.abs(dw_ours - dw_code)[clear].max() / max(np.abs(dw_code).max(), 1e-30)
        flips = int(np.sum((np.sign(dw_ours) != np.sign(dw_code)) & ~clear))
        worst_step = max(worst_step, rel)
        print(f"  {name:28s} {rel:.2e}   {flips} of {int((~clear).sum())} small-gradient elements step the other way "
              f"(of {g.size})")
    worst = max(worst, worst_step)
    print(f"\nlargest relative difference {worst:.2e} (tolerance {a.tol}): {'agree' if worst <= a.tol else 'DIFFER'}")
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
