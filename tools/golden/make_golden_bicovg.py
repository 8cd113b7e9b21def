#!/usr/bin/env python3
"""Reference tensors for the BiCovG golden tests, computed with PyTorch.

Run by hand (CI never needs torch):
    python3 -m venv .venv-golden && .venv-golden/bin/pip install torch==2.13.0 h5py numpy
    .venv-golden/bin/python tools/golden/make_golden_bicovg.py Tests/FFEngineTests/Fixtures

An implementation of BiCovG as papers/bicovg/README.md describes it, written from that
description and independent of ffrepro's code: two training steps of a small VGG-style
stack. Per step it stores the input, labels, every readout's logits and loss, the Logistic
Fusion logits and loss; it stores the initial tensors (init/<name>) and every trained
tensor after both steps (final/<name>), named as ffrepro names them.

The method (every unit: conv3x3 pad 1 + ReLU -> [tap] -> RMS pool 2 when listed ->
LayerNorm over (C, H, W), no affine, eps 1e-5):
  - blocks of consecutive units; a block's input is detached; backprop inside a block
    from the objective at its last unit's tap;
  - objective: g = adaptive_avg_pool2d(y^2, P).flatten (ASGE patch energies, P from
    alpha), z = U y for K unit directions U (K, C), e_P = adaptive_avg_pool2d(z^2,
    P).flatten for each pyramid level P (clipped to min(H, W), repeats dropped), the
    logits [g | e_P1 | e_P2 | ...] R + b with R, b fixed;
  - Feature Alignment Layer on every block input but the first: x + conv1x1(x) with the
    1x1 conv (bias) zero-initialised, trained by that block's loss;
  - Logistic Fusion: logits = sum_l sigmoid(w_l) a_l over the detached readout logits,
    w_l initialised linearly from -2 (first readout) to 2 (last), its own cross-entropy,
    AdamW without weight decay;
  - each block has an AdamW over its convs and its alignment conv.

Cases:
  layerlocal  channels [4, 8, 8, 8], pool after 1 and 3, 8x8x3 input, one unit per block,
              alpha 2 -> P = 4, 2, 2, 2; K = 3, levels {1, 2, 4} (last map 2x2 -> {1, 2}).
  hybrid      channels [4, 6, 6, 8], pool after 2, 7x5x2 input, blocks of 2 units,
              alpha 2 -> P = 2 at both readouts (adaptive bins on 7x5); K = 4, levels
              {1, 2, 4} (7x5 -> {1, 2, 4}; 3x2 -> {1, 2}).
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


def map_levels(levels, h, w):
    out = []
    for p in levels:
        p = min(p, h, w)
        if p not in out:
            out.append(p)
    return out


def energies(y, P, U, levels):
    g = F.adaptive_avg_pool2d(y * y, P).flatten(1)
    z = torch.einsum("kc,nchw->nkhw", U, y)
    parts = [F.adaptive_avg_pool2d(z * z, p).flatten(1) for p in map_levels(levels, y.shape[2], y.shape[3])]
    return torch.cat([g] + parts, dim=1)


def run_case(f, name, channels, pool_after, block_sizes, in_shape, classes, alpha, K, levels, batch, lr, wd, seed):
    g = torch.Generator().manual_seed(seed)
    c_in, h, w = in_shape
    c_last = channels[-1]
    params = {}
    units = []
    shape = (c_in, h, w)
    for i, c in enumerate(channels):
        bound = 1 / math.sqrt(shape[0] * 9)
        wt = ((torch.rand(c, shape[0], 3, 3, generator=g) * 2 - 1) * bound).requires_grad_(True)
        bs = ((torch.rand(c, generator=g) * 2 - 1) * bound).requires_grad_(True)
        params[f"units.{i}.conv.weight"] = wt.detach().clone()
        params[f"units.{i}.conv.bias"] = bs.detach().clone()
        pooled = (i + 1) in pool_after
        units.append(dict(w=wt, b=bs, pooled=pooled, c=c, tap=(shape[1], shape[2])))
        shape = (c, shape[1] // 2, shape[2] // 2) if pooled else (c, shape[1], shape[2])

    blocks = []
    start = 0
    for b, m in enumerate(block_sizes):
        members = list(range(start, start + m))
        start += m
        last = members[-1]
        u = units[last]
        th, tw = u["tap"]
        P = partition(alpha, c_last, u["c"], th, tw)
        U = torch.randn(K, u["c"], generator=g)
        U = U / U.norm(dim=1, keepdim=True)
        d = u["c"] * P * P + K * sum(p * p for p in map_levels(levels, th, tw))
        std = 1 / math.sqrt(classes)
        R = torch.randn(d, classes, generator=g) * std
        rb = torch.randn(classes, generator=g) * std
        pre = f"units.{last}.local"
        params[pre + ".readout.weight"] = R
        params[pre + ".readout.bias"] = rb
        params[pre + ".directions"] = U
        blk = dict(members=members, last=last, P=P, U=U, R=R, rb=rb)
        if b > 0:
            cb = units[members[0] - 1]["c"]
            blk["fal_w"] = torch.zeros(cb, cb, 1, 1, requires_grad=True)
            blk["fal_b"] = torch.zeros(cb, requires_grad=True)
            params[f"blocks.{b}.fal.weight"] = blk["fal_w"].detach().clone()
            params[f"blocks.{b}.fal.bias"] = blk["fal_b"].detach().clone()
        blocks.append(blk)

    L = len(blocks)
    w0 = np.array([-2.0 + 4.0 * l / (L - 1) if L > 1 else 2.0 for l in range(L)], dtype=np.float64).astype(np.float32)
    fusion_w = torch.tensor(w0, requires_grad=True)
    params["fusion.weight"] = fusion_w.detach().clone()

    opts = []
    for blk in blocks:
        ps = ([blk["fal_w"], blk["fal_b"]] if "fal_w" in blk else []) + [t for i in blk["members"] for t in (units[i]["w"], units[i]["b"])]
        opts.append(torch.optim.AdamW(ps, lr=lr, weight_decay=wd))
    fusion_opt = torch.optim.AdamW([fusion_w], lr=lr, weight_decay=0.0)

    grp = f.create_group(name)
    cfg = dict(channels=channels, pool_after=pool_after, blocks=",".join(map(str, block_sizes)), input_shape=list(in_shape),
               classes=classes, alpha=alpha, directions=K, levels=levels, batch=batch, lr=lr, weight_decay=wd,
               partitions=[blk["P"] for blk in blocks], readouts=[f"units.{blk['last']}" for blk in blocks])
    grp.attrs["config"] = json.dumps(cfg)
    for k, v in params.items():
        grp.create_dataset("init/" + k, data=v.numpy().astype(np.float32))

    def post(i, y):
        t = torch.sqrt(F.avg_pool2d(y * y, 2)) if units[i]["pooled"] else y
        return F.layer_norm(t, t.shape[1:], eps=1e-5)

    for step in range(2):
        x = torch.randn(batch, c_in, h, w, generator=g)
        y = torch.randint(0, classes, (batch,), generator=g)
        s = grp.create_group(f"step{step}")
        s.create_dataset("x", data=x.numpy())
        s.create_dataset("labels", data=y.numpy().astype(np.int32))
        scores = []
        for b, blk in enumerate(blocks):
            t = x.detach()
            if "fal_w" in blk:
                t = t + F.conv2d(t, blk["fal_w"], blk["fal_b"])
            for i in blk["members"]:
                tap = F.relu(F.conv2d(t, units[i]["w"], units[i]["b"], padding=1))
                t = post(i, tap) if i != blk["last"] else tap
            logits = energies(tap, blk["P"], blk["U"], levels) @ blk["R"] + blk["rb"]
            loss = F.cross_entropy(logits, y)
            opts[b].zero_grad()
            loss.backward()
            opts[b].step()
            s.create_dataset(f"units.{blk['last']}.loss", data=np.float64(loss.item()))
            s.create_dataset(f"units.{blk['last']}.logits", data=logits.detach().numpy())
            scores.append(logits.detach())
            x = post(blk["last"], tap.detach())
        fused = sum(torch.sigmoid(fusion_w[l]) * a for l, a in enumerate(scores))
        floss = F.cross_entropy(fused, y)
        fusion_opt.zero_grad()
        floss.backward()
        fusion_opt.step()
        s.create_dataset("head.loss", data=np.float64(floss.item()))
        s.create_dataset("head.logits", data=fused.detach().numpy())

    final = {"fusion.weight": fusion_w}
    for i, u in enumerate(units):
        final[f"units.{i}.conv.weight"] = u["w"]
        final[f"units.{i}.conv.bias"] = u["b"]
    for b, blk in enumerate(blocks):
        if "fal_w" in blk:
            final[f"blocks.{b}.fal.weight"] = blk["fal_w"]
            final[f"blocks.{b}.fal.bias"] = blk["fal_b"]
    for k, v in final.items():
        grp.create_dataset("final/" + k, data=v.detach().numpy().astype(np.float32))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "Tests/FFEngineTests/Fixtures"
    path = f"{out_dir}/golden_bicovg.h5"
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["generator"] = "tools/golden/make_golden_bicovg.py"
        f.attrs["torch_version"] = str(torch.__version__)
        run_case(f, "layerlocal", channels=[4, 8, 8, 8], pool_after=[1, 3], block_sizes=[1, 1, 1, 1], in_shape=(3, 8, 8),
                 classes=5, alpha=2.0, K=3, levels=[1, 2, 4], batch=4, lr=1e-2, wd=1e-3, seed=11)
        run_case(f, "hybrid", channels=[4, 6, 6, 8], pool_after=[2], block_sizes=[2, 2], in_shape=(2, 7, 5),
                 classes=3, alpha=2.0, K=4, levels=[1, 2, 4], batch=3, lr=1e-2, wd=1e-3, seed=12)
    print("wrote", path)


if __name__ == "__main__":
    main()
