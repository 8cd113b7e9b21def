#!/usr/bin/env python3
"""PyTorch CPU timing of exactly the steps `repro bench sff-resnet18-cifar10` and
`repro bench bp-resnet18-cifar10` measure: torchvision ResNet18 with the CIFAR stem, 32x32x3,
10 classes, batch 128, AdamW.
  sff  blocks per stage [stem+layer1] [layer2] [layer3] [layer4]; each block's input is the
       detached, LayerNorm-ed (no affine) output of the previous one; aux 1x1 conv to 10 maps,
       g = mean a^2, cross-entropy of g; every block steps its own AdamW after the pass.
  bp   the same network end to end, GAP + linear head, cross-entropy, one AdamW.
  infer  eval-mode forward of the SFF network with the aux convs (the prediction averages g).

Run by hand:  /path/to/venv/bin/python tools/bench/torch_sff_step.py [--threads 2] [--steps 3] [--compile]
Prints one JSON line per measurement: {"step": ..., "images_per_s": ..., "peak_rss_mib": ...}.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "golden"))
import formula  # noqa: E402


def network(classes):
    resnet, _ = formula.torchvision_models()
    m = resnet.resnet18(num_classes=classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def sff_parts(m, classes):
    blocks = [nn.Sequential(m.conv1, m.bn1, m.relu, m.layer1), m.layer2, m.layer3, m.layer4]
    aux = [nn.Conv2d(c, classes, 1) for c in (64, 128, 256, 512)]
    opts = [torch.optim.AdamW(list(b.parameters()) + list(a.parameters()), lr=1e-3, weight_decay=1e-2)
            for b, a in zip(blocks, aux)]
    return blocks, aux, opts


def sff_step(blocks, aux, opts, x, y):
    h = x
    for b, a, o in zip(blocks, aux, opts):
        o.zero_grad(set_to_none=True)
        out = b(h.detach())
        g = a(out).pow(2).mean(dim=(2, 3))
        F.cross_entropy(g, y).backward()
        h = F.layer_norm(out.detach(), out.shape[1:])
    for o in opts:
        o.step()


def sff_infer(blocks, aux, x):
    with torch.no_grad():
        h, total = x, 0
        for b, a in zip(blocks, aux):
            out = b(h)
            total = total + a(out).pow(2).mean(dim=(2, 3))
            h = F.layer_norm(out, out.shape[1:])
        return total.argmax(1)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(name, fn, steps, batch):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    dt = time.perf_counter() - t0
    print(json.dumps({"step": name, "images_per_s": batch * steps / dt, "peak_rss_mib": peak_rss_mib(),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--which", default="sff,bp,infer")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))
    for which in a.which.split(","):
        m = network(10)
        m.train()
        if which == "sff":
            blocks, aux, opts = sff_parts(m, 10)
            if a.compile:
                blocks = [torch.compile(b) for b in blocks]
            timed("sff-resnet18 train" + (" (compiled)" if a.compile else ""),
                  lambda: sff_step(blocks, aux, opts, x, y), a.steps, a.batch)
        elif which == "bp":
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-2)
            mm = torch.compile(m) if a.compile else m

            def bp():
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(mm(x), y).backward()
                opt.step()
            timed("bp-resnet18 train" + (" (compiled)" if a.compile else ""), bp, a.steps, a.batch)
        elif which == "infer":
            blocks, aux, _ = sff_parts(m, 10)
            for b in blocks:
                b.eval()
            timed("sff-resnet18 infer", lambda: sff_infer(blocks, aux, x), a.steps, a.batch)


if __name__ == "__main__":
    main()
