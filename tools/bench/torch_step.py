#!/usr/bin/env python3
"""The PyTorch side of `repro bench --compare-torch`: times the same steps as `repro bench`.

Run by hand (CI never needs torch):
    python3 -m venv .venv-torch
    .venv-torch/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 numpy
    .build/release/repro show asge-cifar100 --json > /tmp/asge.json
    .venv-torch/bin/python tools/bench/torch_step.py --config /tmp/asge.json --mode compile

The model and step are built from a recipe config (the JSON of `repro show NAME --json`), the same
way ffrepro's Network and Trainer build them (Models/Network.swift, Training/Trainer.swift,
Layers/GoodnessReadout.swift):

  layer-local (ASGE, DTG-FF): for each conv unit, conv3x3(pad 1) + bias + ReLU -> y on the
    *detached* input; goodness g = adaptive_avg_pool2d(y^2, P) flattened; logits = g R / T + b
    with a fixed random R, b (T = exp(tau) when the recipe learns a temperature); CE on the
    labels; its backward reaches only that unit's conv (and tau). The map forwarded to the
    next unit is pool(y), dropout (training, when the recipe has it) and a per-sample
    LayerNorm without affine or RMS scaling (inter_layer_norm), with no graph. The
    classifier head (Fusion: GAP of the tapped maps, or of the forwarded outputs when
    head_input = output -> [BN1d] -> one Linear, or one Linear per layer with logits summed
    when fusion_head = per-layer-sum) trains on detached features. input_norm = rms-scale
    divides each image by its RMS first. One optimizer per unit and one for the head, stepped after
    the whole pass (AdamW or SGD with the recipe's settings).
  backprop (bp-*): conv + BN + ReLU units, pooling, GAP of the last unit's output -> Linear,
    end-to-end CE, one optimizer; the image itself needs no gradient.
  inference: every unit's readout logits (and CE) and the head's logits on a forward pass
    in eval mode without autograd, as Trainer.evaluateBatch.

Timing: `--warmup` untimed steps (torch.compile compiles there), then `--steps` timed
steps on one synthetic batch; images/s = batch * steps / seconds. Peak RSS of each phase is
VmHWM after resetting it (/proc/self/clear_refs). Prints one JSON line.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the Swift caller checks for this exit code and says how to install torch
    sys.stderr.write("torch is not importable by %s\n" % sys.executable)
    sys.exit(3)

ARCHS = {
    "vgg8": ([128, 256, 256, 512, 512, 512, 512], [1, 3, 5, 7]),
    "vgg11": ([64, 128, 256, 256, 512, 512, 512, 512], [1, 2, 4, 6, 8]),
    "vgg11-asge": ([128, 256, 256] + [512] * 7, [2, 4, 6, 8]),
    "vgg16": ([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512], [2, 4, 7, 10, 13]),
}
# (channels, stored image size, classes) of the datasets the recipes use (DatasetCatalog.swift).
DATASETS = {
    "mnist": (1, 28, 10), "fashion-mnist": (1, 28, 10), "cifar10": (3, 32, 10), "cifar100": (3, 32, 100),
    "imagenet100": (3, 256, 100), "imagenet": (3, 256, 1000), "tiny-imagenet": (3, 64, 200),
    "imagenette": (3, 256, 10),
}


def training_mode(cfg):
    """layer-local or backprop, from the recipe's blocks / local_loss / head_backprop (or the
    `training` field of configs written before blocks existed)."""
    if "blocks" not in cfg:
        return cfg["training"]
    if cfg["blocks"] in ("per-unit", "per-layer") and cfg["local_loss"] == "spatial-goodness" and not cfg["head_backprop"]:
        return "layer-local"
    if cfg["blocks"] == "whole" and cfg["local_loss"] == "none" and cfg["head_backprop"]:
        return "backprop"
    return "blocks=%s local_loss=%s head_backprop=%s" % (cfg["blocks"], cfg["local_loss"], cfg["head_backprop"])


def partition(alpha, c_last, c, h, w):
    """ASGE eq. 3, as ff_goodness_partition."""
    return min(max(1, math.floor(alpha * c_last / c)), h, w)


def pool(kind, x, k):
    if kind == "max":
        return F.max_pool2d(x, k)
    if kind == "avg":
        return F.avg_pool2d(x, k)
    return torch.sqrt(F.avg_pool2d(x * x, k))


class LocalUnit(torch.nn.Module):
    """conv + ReLU + goodness readout of one layer-local unit: returns (y, logits)."""

    def __init__(self, c_in, c, p, classes, temperature, tau0, bins):
        super().__init__()
        self.conv = torch.nn.Conv2d(c_in, c, 3, padding=1)
        self.p = p
        self.bins = bins
        d = c * p * p
        std = 1 / math.sqrt(classes)
        self.register_buffer("R", torch.randn(d, classes) * std)
        self.register_buffer("rb", torch.randn(classes) * std)
        self.tau = torch.nn.Parameter(torch.full((1,), float(tau0))) if temperature else None

    def forward(self, x):
        y = F.relu(self.conv(x))
        if self.bins == "floor":
            k = (y.shape[2] // self.p, y.shape[3] // self.p)
            g = F.avg_pool2d(y * y, k, k)[:, :, :self.p, :self.p].flatten(1)
        else:
            g = F.adaptive_avg_pool2d(y * y, self.p).flatten(1)
        proj = g @ self.R
        if self.tau is not None:
            proj = proj / torch.exp(self.tau)
        return y, proj + self.rb


def rms_scale(x, eps):
    return x / (x.square().mean(dim=tuple(range(1, x.dim())), keepdim=True).sqrt() + eps)


class Post(torch.nn.Module):
    def __init__(self, pooled, kind, k, norm, eps, dropout):
        super().__init__()
        self.pooled, self.kind, self.k, self.norm, self.eps, self.dropout = pooled, kind, k, norm, eps, dropout

    def forward(self, y):
        out = pool(self.kind, y, self.k) if self.pooled else y
        if self.dropout > 0:
            out = F.dropout(out, self.dropout, self.training)
        if self.norm == "rms-scale":
            return rms_scale(out, self.eps)
        return F.layer_norm(out, out.shape[1:], eps=self.eps)


class Head(torch.nn.Module):
    def __init__(self, widths, classes, bn, per_layer):
        super().__init__()
        features = sum(widths)
        self.bn = torch.nn.BatchNorm1d(features) if bn else None
        self.widths = widths if per_layer and len(widths) > 1 else [features]
        self.linears = torch.nn.ModuleList(torch.nn.Linear(w, classes) for w in self.widths)

    def forward(self, z):
        z = self.bn(z) if self.bn is not None else z
        if len(self.linears) == 1:
            return self.linears[0](z)
        return sum(lin(part) for lin, part in zip(self.linears, torch.split(z, self.widths, dim=1)))


def make_optimizer(cfg, groups):
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                               nesterov=cfg["nesterov"])
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["adam_eps"],
                             weight_decay=cfg["weight_decay"])


class LayerLocal:
    def __init__(self, cfg, shape, classes, args):
        channels, pool_after = arch_of(cfg)
        if cfg["pred"] == "best":
            channels = channels + [channels[-1]]
        if not cfg.get("decoupled_norm", True):
            raise SystemExit("torch_step.py: decoupled_norm = false is not replicated")
        self.head_output = cfg.get("head_input", "tap") == "output"
        self.input_rms = cfg.get("input_norm", "standardize") == "rms-scale"
        self.rms_eps = cfg.get("rms_eps", 1.9287498479639178e-22)
        norm = cfg.get("inter_layer_norm", "layernorm")
        self.units, self.posts, self.opts = [], [], []
        c_in, h, w = shape
        for i, c in enumerate(channels):
            p = partition(cfg["alpha"], channels[-1], c, h, w)
            u = LocalUnit(c_in, c, p, classes, cfg["learn_temperature"], cfg["temperature_init"],
                          cfg.get("goodness_bins", "adaptive"))
            pooled = (i + 1) in pool_after
            post = Post(pooled, cfg["pool"], cfg["pool_size"], norm,
                        self.rms_eps if norm == "rms-scale" else cfg["ln_eps"], cfg.get("dropout", 0))
            groups = [{"params": [u.conv.weight, u.conv.bias]}]
            if u.tau is not None:
                groups.append({"params": [u.tau], "weight_decay": 0.0})
            self.opts.append(make_optimizer(cfg, groups))
            self.units.append(u)
            self.posts.append(post)
            if pooled:
                h, w = h // cfg["pool_size"], w // cfg["pool_size"]
            c_in = c
        last = len(channels) - 1
        self.taps = [] if cfg["pred"] == "best" else (list(range(1, last + 1)) if cfg["pred"] == "fusion" else [last])
        self.head = None
        if self.taps:
            self.head = Head([channels[t] for t in self.taps], classes, cfg["fusion_batch_norm"],
                             cfg.get("fusion_head", "concat") == "per-layer-sum")
            self.opts.append(make_optimizer(cfg, [{"params": list(self.head.parameters())}]))
        mods = self.units + self.posts + ([self.head] if self.head else [])
        if args.channels_last:
            for m in mods:
                m.to(memory_format=torch.channels_last)
        self.run_units = [compile_(m, args) for m in self.units]
        self.run_posts = [compile_(m, args) for m in self.posts]
        self.run_head = compile_(self.head, args) if self.head else None
        self.steps = [compile_step(o, args) for o in self.opts]
        self.classes = classes

    def train_step(self, x, labels):
        feats = []
        if self.input_rms:
            x = rms_scale(x, self.rms_eps)
        for i, (u, post) in enumerate(zip(self.run_units, self.run_posts)):
            y, logits = u(x.detach())
            F.cross_entropy(logits, labels).backward()
            with torch.no_grad():
                self.posts[i].train()
                x = post(y)
                if i in self.taps:
                    feats.append((x if self.head_output else y).mean(dim=(2, 3)))
        if self.head is not None:
            self.head.train()
            F.cross_entropy(self.run_head(torch.cat(feats, dim=1)), labels).backward()
        for o, step in zip(self.opts, self.steps):
            step()
            o.zero_grad(set_to_none=False)

    @torch.no_grad()
    def infer(self, x, labels):
        feats = []
        k = min(5, self.classes)
        if self.input_rms:
            x = rms_scale(x, self.rms_eps)
        for i, (u, post) in enumerate(zip(self.run_units, self.run_posts)):
            y, logits = u(x)
            F.cross_entropy(logits, labels)
            logits.topk(k, dim=1)
            self.posts[i].eval()
            x = post(y)
            if i in self.taps:
                feats.append((x if self.head_output else y).mean(dim=(2, 3)))
        if self.head is not None:
            self.head.eval()
            logits = self.run_head(torch.cat(feats, dim=1))
            F.cross_entropy(logits, labels)
            logits.topk(k, dim=1)


class BPNet(torch.nn.Module):
    def __init__(self, cfg, shape, classes):
        super().__init__()
        channels, pool_after = arch_of(cfg)
        if cfg.get("conv_norm", cfg.get("bp_norm")) != "batch" or cfg["pred"] != "last" or cfg["head_input"] != "output":
            raise SystemExit("torch_step.py: only the conv_norm = batch, pred = last, head_input = output baseline "
                             "is replicated for backprop recipes")
        layers = []
        c_in = shape[0]
        for i, c in enumerate(channels):
            layers += [torch.nn.Conv2d(c_in, c, 3, padding=1), torch.nn.BatchNorm2d(c), torch.nn.ReLU(inplace=True)]
            if (i + 1) in pool_after:
                layers.append({"max": torch.nn.MaxPool2d, "avg": torch.nn.AvgPool2d}[cfg["pool"]](cfg["pool_size"]))
            c_in = c
        self.features = torch.nn.Sequential(*layers)
        self.linear = torch.nn.Linear(c_in, classes)

    def forward(self, x):
        return self.linear(self.features(x).mean(dim=(2, 3)))


class Backprop:
    def __init__(self, cfg, shape, classes, args):
        if cfg["pool"] == "rms":
            raise SystemExit("torch_step.py: RMS pooling in a backprop recipe is not replicated")
        self.net = BPNet(cfg, shape, classes)
        if args.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.opt = make_optimizer(cfg, [{"params": list(self.net.parameters())}])
        self.run = compile_(self.net, args)
        self.step = compile_step(self.opt, args)
        self.classes = classes

    def train_step(self, x, labels):
        self.net.train()
        F.cross_entropy(self.run(x), labels).backward()
        self.step()
        self.opt.zero_grad(set_to_none=False)

    @torch.no_grad()
    def infer(self, x, labels):
        self.net.eval()
        logits = self.run(x)
        F.cross_entropy(logits, labels)
        logits.topk(min(5, self.classes), dim=1)


def arch_of(cfg):
    if cfg["arch"] == "custom":
        return list(cfg["channels"]), list(cfg.get("pool_after") or [])
    channels, pool_after = ARCHS[cfg["arch"]]
    return list(channels), list(cfg.get("pool_after") or pool_after)


def compile_(m, args):
    # Every unit, post block and optimizer is its own compiled frame of the same code:
    # the default recompile limit (8) would send the later ones back to eager.
    torch._dynamo.config.cache_size_limit = 256
    torch._dynamo.config.accumulated_cache_size_limit = 1024
    return torch.compile(m, dynamic=False) if args.mode == "compile" else m


def compile_step(opt, args):
    if args.mode == "compile" and args.compile_optimizer:
        return torch.compile(opt.step)
    return opt.step


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def timed(fn, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - t0


def load_config(args):
    if args.config:
        text = sys.stdin.read() if args.config == "-" else open(args.config).read()
        return json.loads(text)
    name = "asge-cifar100" if args.recipe == "asge-vgg8" else args.recipe
    return json.loads(subprocess.check_output([args.repro, "show", name, "--json"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="recipe JSON file (`repro show NAME --json`), or - for stdin")
    ap.add_argument("--recipe", default="asge-vgg8", help="recipe name, read through `REPRO show` (no --config)")
    ap.add_argument("--repro", default=".build/release/repro", help="the repro binary for --recipe")
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--no-compile-optimizer", dest="compile_optimizer", action="store_false",
                    help="with --mode compile, run the optimizer step eagerly")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: all cores)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=0, help="untimed steps (default 1 eager, 3 compiled)")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--what", default="train,infer", help="comma list of train, infer")
    ap.add_argument("--label", default="")
    args = ap.parse_args()

    cfg = load_config(args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(cfg.get("seed", 0))
    c, size, classes = DATASETS[cfg["dataset"]]
    size = cfg.get("input_size") or size
    if cfg.get("labels") == "coarse_labels":
        classes = 20
    batch = args.batch_size or cfg["batch_size"]
    if cfg.get("accumulate", 1) != 1:
        raise SystemExit("torch_step.py: gradient accumulation is not replicated")
    shape = (c, size, size)
    mode = training_mode(cfg)
    if mode not in ("layer-local", "backprop") or cfg["arch"] not in list(ARCHS) + ["custom"]:
        raise SystemExit("torch_step.py: %s (%s, arch %s) is not replicated; VGG layer-local and backprop "
                         "recipes are (tools/bench/torch_sff_step.py covers SFF)" % (cfg["name"], mode, cfg["arch"]))
    if mode == "layer-local" and cfg.get("conv_norm", "none") != "none":
        raise SystemExit("torch_step.py: layer-local with conv_norm = %s is not replicated" % cfg["conv_norm"])
    model = (LayerLocal if mode == "layer-local" else Backprop)(cfg, shape, classes, args)

    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, *shape, generator=g)
    labels = torch.randint(0, classes, (batch,), generator=g)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    warm = args.warmup or (3 if args.mode == "compile" else 1)
    out = {"name": args.label or cfg["name"], "mode": args.mode + ("+cl" if args.channels_last else ""),
           "threads": torch.get_num_threads(), "batch": batch, "torch": torch.__version__}
    what = args.what.split(",")
    if "train" in what:
        for _ in range(warm):
            model.train_step(x, labels)
        reset_peak_rss()
        t = timed(lambda: model.train_step(x, labels), args.steps)
        out["train_images_per_second"] = batch * args.steps / t
        out["train_peak_rss"] = peak_rss()
    if "infer" in what:
        for _ in range(warm):
            model.infer(x, labels)
        reset_peak_rss()
        t = timed(lambda: model.infer(x, labels), args.steps)
        out["infer_images_per_second"] = batch * args.steps / t
        out["infer_peak_rss"] = peak_rss()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
