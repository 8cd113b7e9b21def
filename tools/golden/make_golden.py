#!/usr/bin/env python3
"""Reference tensors for the whole-model golden tests, computed with PyTorch.

Run by hand (CI never needs torch):
    python3 -m venv .venv-golden && .venv-golden/bin/pip install torch==2.13.0 h5py numpy
    .venv-golden/bin/python tools/golden/make_golden.py Tests/FFEngineTests/Fixtures

For each case it builds a tiny VGG-style network, runs two layer-local training steps
exactly as the method describes (an independent PyTorch implementation of the method as
papers/asge/README.md and papers/dtgff/README.md state it), and stores inputs, initial
parameters, per-step per-layer losses and logits, and the parameters after the two
optimizer steps. Parameter names match ffrepro's (units.<i>.conv.weight,
units.<i>.local.readout.weight, head.linear.weight...).

Cases:
  asge   channels [4, 8, 8], pool after 1 and 3 (RMS), 8x8x3 input, alpha 2 -> P = 4, 2, 2,
         Fusion Pred head (GAP of layers 2..3 -> Linear), AdamW.
  dtgff  channels [4, 6, 8], pool after 2 (RMS), 6x6x3 input, alpha 1.5 -> P = 3, 2, 1
         (6x6 with P=4 would be adaptive; here layer 1 uses P=3 on 6x6), learnable
         temperature per layer (tau init 0.3), fused classifier BN1d + Linear.
  adaptive  channels [4, 8], no pooling, 7x5 input, alpha 2 -> P = 4 (adaptive bins on
         7x5 clipped to 5) and P = 2; Last Pred head. Exercises non-divisible patches.
"""
import json
import math
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


def partition(alpha, c_last, c, h, w):
    return min(max(1, math.floor(alpha * c_last / c)), h, w)


def run_case(f, name, channels, pool_after, in_shape, classes, alpha, batch, lr, wd,
             temperature, head, head_bn, seed):
    g = torch.Generator().manual_seed(seed)
    c_in, h, w = in_shape
    n_units = len(channels)
    c_last = channels[-1]

    # Initial parameters (any fixed values do; the test loads them).
    params = {}
    units = []
    shape = (c_in, h, w)
    for i, c in enumerate(channels):
        fan_in = shape[0] * 9
        bound = 1 / math.sqrt(fan_in)
        wt = (torch.rand(c, shape[0], 3, 3, generator=g) * 2 - 1) * bound
        bs = (torch.rand(c, generator=g) * 2 - 1) * bound
        p = partition(alpha, c_last, c, shape[1], shape[2])
        d = c * p * p
        std = 1 / math.sqrt(classes)
        R = torch.randn(d, classes, generator=g) * std
        rb = torch.randn(classes, generator=g) * std
        pooled = (i + 1) in pool_after
        out_hw = (shape[1] // 2, shape[2] // 2) if pooled else (shape[1], shape[2])
        u = dict(conv_w=wt.clone().requires_grad_(True), conv_b=bs.clone().requires_grad_(True),
                 R=R, rb=rb, P=p, pooled=pooled, tap=(c, shape[1], shape[2]))
        if temperature is not None:
            u["tau"] = torch.full((1,), temperature).requires_grad_(True)
        units.append(u)
        params[f"units.{i}.conv.weight"] = wt
        params[f"units.{i}.conv.bias"] = bs
        params[f"units.{i}.local.readout.weight"] = R
        params[f"units.{i}.local.readout.bias"] = rb
        if temperature is not None:
            params[f"units.{i}.local.log_temperature"] = u["tau"].detach().clone()
        shape = (c, out_hw[0], out_hw[1])

    taps = list(range(1, n_units)) if head == "fusion" else [n_units - 1]
    feat = sum(channels[t] for t in taps)
    hb = 1 / math.sqrt(feat)
    head_w = ((torch.rand(classes, feat, generator=g) * 2 - 1) * hb).requires_grad_(True)
    head_b = ((torch.rand(classes, generator=g) * 2 - 1) * hb).requires_grad_(True)
    params["head.linear.weight"] = head_w.detach().clone()
    params["head.linear.bias"] = head_b.detach().clone()
    bn = None
    if head_bn:
        bn = torch.nn.BatchNorm1d(feat)
        params["head.bn.weight"] = bn.weight.detach().clone()
        params["head.bn.bias"] = bn.bias.detach().clone()
        params["head.bn.running_mean"] = bn.running_mean.clone()
        params["head.bn.running_var"] = bn.running_var.clone()

    opts = []
    for u in units:
        groups = [{"params": [u["conv_w"], u["conv_b"]]}]
        if "tau" in u:
            groups.append({"params": [u["tau"]], "weight_decay": 0.0})
        opts.append(torch.optim.AdamW(groups, lr=lr, weight_decay=wd))
    head_params = [head_w, head_b] + (list(bn.parameters()) if bn is not None else [])
    head_opt = torch.optim.AdamW(head_params, lr=lr, weight_decay=wd)

    grp = f.create_group(name)
    cfg = dict(channels=channels, pool_after=pool_after, input_shape=list(in_shape), classes=classes,
               alpha=alpha, batch=batch, lr=lr, weight_decay=wd, temperature_init=temperature,
               head=head, head_bn=head_bn, partitions=[u["P"] for u in units])
    grp.attrs["config"] = json.dumps(cfg)
    for k, v in params.items():
        grp.create_dataset("init/" + k, data=v.numpy().astype(np.float32))

    for step in range(2):
        x = torch.randn(batch, c_in, h, w, generator=g)
        y = torch.randint(0, classes, (batch,), generator=g)
        s = grp.create_group(f"step{step}")
        s.create_dataset("x", data=x.numpy())
        s.create_dataset("labels", data=y.numpy().astype(np.int32))
        feats = []
        for i, u in enumerate(units):
            out = F.relu(F.conv2d(x.detach(), u["conv_w"], u["conv_b"], padding=1))
            gd = F.adaptive_avg_pool2d(out * out, u["P"]).flatten(1)
            proj = gd @ u["R"]
            if "tau" in u:
                logits = proj / torch.exp(u["tau"]) + u["rb"]
            else:
                logits = proj + u["rb"]
            loss = F.cross_entropy(logits, y)
            opts[i].zero_grad()
            loss.backward()
            opts[i].step()
            s.create_dataset(f"units.{i}.loss", data=np.float64(loss.item()))
            s.create_dataset(f"units.{i}.logits", data=logits.detach().numpy())
            if i in taps:
                feats.append(out.detach().mean(dim=(2, 3)))
            nxt = out.detach()
            if u["pooled"]:
                nxt = torch.sqrt(F.avg_pool2d(nxt * nxt, 2))
            x = F.layer_norm(nxt, nxt.shape[1:], eps=1e-5)
        z = torch.cat(feats, dim=1)
        if bn is not None:
            bn.train()
            z = bn(z)
        hl = F.linear(z, head_w, head_b)
        hloss = F.cross_entropy(hl, y)
        head_opt.zero_grad()
        hloss.backward()
        head_opt.step()
        s.create_dataset("head.loss", data=np.float64(hloss.item()))
        s.create_dataset("head.logits", data=hl.detach().numpy())

    final = {}
    for i, u in enumerate(units):
        final[f"units.{i}.conv.weight"] = u["conv_w"]
        final[f"units.{i}.conv.bias"] = u["conv_b"]
        if "tau" in u:
            final[f"units.{i}.local.log_temperature"] = u["tau"]
    final["head.linear.weight"] = head_w
    final["head.linear.bias"] = head_b
    if bn is not None:
        final["head.bn.weight"] = bn.weight
        final["head.bn.bias"] = bn.bias
        final["head.bn.running_mean"] = bn.running_mean
        final["head.bn.running_var"] = bn.running_var
    for k, v in final.items():
        grp.create_dataset("final/" + k, data=v.detach().numpy().astype(np.float32))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "Tests/FFEngineTests/Fixtures"
    path = f"{out_dir}/golden.h5"
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["generator"] = "tools/golden/make_golden.py"
        f.attrs["torch_version"] = str(torch.__version__)
        run_case(f, "asge", channels=[4, 8, 8], pool_after=[1, 3], in_shape=(3, 8, 8), classes=5,
                 alpha=2.0, batch=4, lr=1e-2, wd=1e-3, temperature=None, head="fusion", head_bn=False, seed=1)
        run_case(f, "dtgff", channels=[4, 6, 8], pool_after=[2], in_shape=(3, 6, 6), classes=5,
                 alpha=1.5, batch=4, lr=1e-2, wd=1e-3, temperature=0.3, head="fusion", head_bn=True, seed=2)
        run_case(f, "adaptive", channels=[4, 8], pool_after=[], in_shape=(2, 7, 5), classes=3,
                 alpha=2.0, batch=3, lr=1e-2, wd=1e-3, temperature=None, head="last", head_bn=False, seed=3)
    print("wrote", path)


if __name__ == "__main__":
    main()
