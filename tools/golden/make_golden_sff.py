#!/usr/bin/env python3
"""Reference tensors for the SFF golden tests: two block-local training steps of full-size
torchvision networks, computed with PyTorch (an implementation independent of ffrepro's).

Run by hand (CI never needs torch):
    python3 -m venv .venv-golden && .venv-golden/bin/pip install torch==2.13.0 torchvision==0.28.0 h5py numpy
    .venv-golden/bin/python tools/golden/make_golden_sff.py Tests/FFEngineTests/Fixtures

Weights and inputs come from tools/golden/formula.py, which the Swift test reproduces bit
for bit, so the fixture stores no weights: per step the labels, each block's class-goodness
scores and loss (inputs are formula tensors tagged "<case>/step<k>"); after the two steps,
for every parameter and BatchNorm statistic, its sum of squares and 16 values at fixed
positions (attribute "tensors" names them, in the rows of final/*).

SFF step (seed 004 / the recipe's method): the network is split into blocks; block b gets
the detached, LayerNorm-ed (no affine, eps 1e-5) output of block b-1; an aux 1x1 conv
(bias) maps its output to N class maps a; g_k = mean over H, W of a_k^2; the loss is
cross-entropy of g (= logsumexp(g) - g_y), averaged over the batch; each block has its own
AdamW over its parameters and its aux conv; all blocks step after the whole forward pass.

Cases:
  resnet18   torchvision resnet18 with the CIFAR stem (3x3 stride-1 conv1, no max-pool),
             blocks per stage [stem+layer1] [layer2] [layer3] [layer4], input 4x3x16x16, 5 classes.
  mbv3small  torchvision mobilenet_v3_small with the CIFAR stem (stride-1 stem and first
             downsampling block), blocks per residual unit (the stem joins features.1),
             input 4x3x16x16, 5 classes.
"""
import json
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import formula

torch.set_default_dtype(torch.float32)
torch.set_num_threads(2)
SAMPLES = 16
# Adam's per-element normalisation turns float32 noise in near-zero gradient entries (after
# BatchNorm on 2x2 maps, for instance) into O(lr) differences between two correct
# implementations; eps 1e-2 keeps the comparison well-conditioned. The AdamW kernel itself is
# checked against PyTorch's formulas in Tests/FFCoreTests/OptimizerTests.swift.
LR, WD, BETAS, EPS = 1e-2, 1e-2, (0.9, 0.999), 1e-2


def resnet_blocks(classes):
    resnet, _ = formula.torchvision_models()
    m = resnet.resnet18()
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    stem = nn.Sequential()
    stem.conv1, stem.bn1, stem.relu = m.conv1, m.bn1, m.relu
    # (unit modules with torchvision names, name of the block's last unit, channels)
    return [
        ([("", stem), ("layer1", m.layer1)], "layer1.1", 64),
        ([("layer2", m.layer2)], "layer2.1", 128),
        ([("layer3", m.layer3)], "layer3.1", 256),
        ([("layer4", m.layer4)], "layer4.1", 512),
    ]


def mobilenet_blocks(classes):
    _, mbv3 = formula.torchvision_models()
    m = mbv3.mobilenet_v3_small()
    f = m.features
    f[0][0].stride = (1, 1)           # CIFAR stem
    f[1].block[0][0].stride = (1, 1)  # first downsampling block at stride 1
    blocks = [([("features.0", f[0]), ("features.1", f[1])], "features.1", 16)]
    for i in range(2, len(f)):
        out = f[i].out_channels if hasattr(f[i], "out_channels") else f[i][0].out_channels
        blocks.append(([(f"features.{i}", f[i])], f"features.{i}", out))
    return blocks


def run_case(h5, name, blocks, classes, shape):
    units = []
    for mods, last, ch in blocks:
        aux = nn.Conv2d(ch, classes, 1, bias=True)
        formula.fill_module(aux, last + ".local.conv.")
        named = []
        for prefix, mod in mods:
            formula.fill_module(mod, prefix + "." if prefix else "")
            mod.train()
            named += [((prefix + "." if prefix else "") + n, t) for n, t in
                      list(mod.named_parameters()) + list(mod.named_buffers()) if not n.endswith("num_batches_tracked")]
        named += [(last + ".local.conv." + n, t) for n, t in aux.named_parameters()]
        params = [p for _, m in mods for p in m.parameters()] + list(aux.parameters())
        opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
        units.append(([m for _, m in mods], aux, last, opt, named))
    g = h5.create_group(name)
    g.attrs["config"] = json.dumps({"classes": classes, "input_shape": list(shape[1:]), "batch": shape[0],
                                    "lr": LR, "weight_decay": WD, "adam_eps": EPS})
    for step in range(2):
        x = torch.from_numpy(formula.inputs(f"{name}/step{step}", shape))
        labels = torch.tensor([(3 * i + step) % classes for i in range(shape[0])], dtype=torch.long)
        scores, losses = [], []
        h = x
        for seq, aux, last, opt, _ in units:
            opt.zero_grad()
            y = h.detach()
            for m in seq:
                y = m(y)
            a = aux(y)
            good = (a * a).mean(dim=(2, 3))
            loss = F.cross_entropy(good, labels)
            loss.backward()
            scores.append(good.detach().numpy())
            losses.append(loss.item())
            h = F.layer_norm(y.detach(), y.shape[1:], eps=1e-5)
        for *_, opt, _ in units:
            opt.step()
        g[f"step{step}/labels"] = labels.numpy().astype(np.int32)
        g[f"step{step}/scores"] = np.stack(scores).astype(np.float32)    # (blocks, batch, classes)
        g[f"step{step}/losses"] = np.array(losses, dtype=np.float64)
    g.attrs["blocks"] = json.dumps([last for _, _, last, _, _ in units])
    names, index, values, sumsq = [], [], [], []
    for *_, named in units:
        for n, t in named:
            v = t.detach().numpy().astype(np.float64).ravel()
            idx = (formula.uniforms("sample:" + n, SAMPLES) * v.size).astype(np.int64)
            names.append(n)
            index.append(idx)
            values.append(v[idx])
            sumsq.append(float((v * v).sum()))
    g.attrs["tensors"] = json.dumps(names)
    g["final/index"] = np.array(index, dtype=np.int32)
    g["final/values"] = np.array(values, dtype=np.float32)
    g["final/sumsq"] = np.array(sumsq, dtype=np.float64)
    print(name, len(names), "tensors")


def main(out_dir):
    torch.manual_seed(0)
    with h5py.File(f"{out_dir}/golden_sff.h5", "w") as h5:
        h5.attrs["generator"] = f"tools/golden/make_golden_sff.py, torch {torch.__version__}"
        run_case(h5, "resnet18", resnet_blocks(5), 5, (4, 3, 16, 16))
        run_case(h5, "mbv3small", mobilenet_blocks(5), 5, (4, 3, 16, 16))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/FFEngineTests/Fixtures")
