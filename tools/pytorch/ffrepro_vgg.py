"""Plain PyTorch definition of ffrepro's VGG-style networks, for files written by
`repro export --format safetensors`.

    from safetensors import safe_open
    from safetensors.torch import load_file
    import ffrepro_vgg

    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    model = ffrepro_vgg.build_model(metadata)
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    head_logits, readout_logits = model(x)      # x: (n, C, H, W), already preprocessed

The module names are ffrepro's tensor names, so the export loads with strict=True:

    units.{i}.conv            Conv2d 3x3, stride 1, padding 1
    units.{i}.bn              BatchNorm2d (conv_norm = "batch")
    units.{i}.norm            LayerNorm over (C, H, W) (inter_layer_norm = "layernorm", ln_affine)
    units.{i}.local.readout   the fixed spatial-goodness readout (buffers weight (D, N), bias (N))
    units.{i}.local.log_temperature   (learn_temperature)
    head.bn                   BatchNorm1d on the concatenated features (fusion_batch_norm)
    head.fc.{k} / head.linear one Linear per layer read (per-layer-sum) / one on the concatenation
    fusion.weight             gate logits of pred = goodness-logistic

Evaluation mode only: dropout is the identity, BatchNorm uses its running statistics.
`input_pipeline` in eval_export.py turns dataset images into the network input.
"""

import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

VGG_SPECS = {
    # name: (conv output channels, 1-based conv layers followed by pooling)
    "vgg8": ([128, 256, 256, 512, 512, 512, 512], [1, 3, 5, 7]),
    "vgg11": ([64, 128, 256, 256, 512, 512, 512, 512], [1, 2, 4, 6, 8]),
    "vgg11-asge": ([128, 256, 256] + [512] * 7, [2, 4, 6, 8]),
    "vgg16": ([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512], [2, 4, 7, 10, 13]),
    "cnn4": ([64, 128, 256, 512], [2, 3, 4]),
}
SUPPORTED_ARCHS = sorted(VGG_SPECS) + ["custom"]


class UnsupportedExport(NotImplementedError):
    """The export describes something this PyTorch definition does not implement."""


# ---------------------------------------------------------------------------------------
# Metadata


def parse_metadata(metadata):
    """The safetensors `__metadata__` (all strings) -> dict with the JSON values decoded."""
    if metadata is None:
        raise ValueError("the file has no __metadata__; it was not written by `repro export`.")
    if metadata.get("format") != "ffrepro-export":
        raise ValueError(f"__metadata__ format is {metadata.get('format')!r}, not 'ffrepro-export'; "
                         "this is not a file written by `repro export --format safetensors`.")
    if metadata.get("format_version") != "1":
        raise ValueError(f"ffrepro-export format_version {metadata.get('format_version')!r} is not supported "
                         "(this tool reads version 1).")
    out = dict(metadata)
    for key in ("config", "input_shape", "class_names", "dataset", "arch_channels", "arch_pool_after"):
        if key in metadata:
            try:
                out[key] = json.loads(metadata[key])
            except json.JSONDecodeError as e:
                raise ValueError(f"__metadata__[{key!r}] is not valid JSON: {e}") from None
    for key in ("config", "input_shape", "class_names"):
        if key not in out:
            raise ValueError(f"__metadata__ lacks {key!r}; the export is incomplete.")
    return out


def _get(config, key, default):
    v = config.get(key, default)
    return default if v is None else v


def vgg_layout(meta):
    """(channels, pool_after) of the exported stack, cross-checked against the config."""
    config = meta["config"]
    arch = config.get("arch")
    if arch not in SUPPORTED_ARCHS:
        raise UnsupportedExport(f"arch = {arch!r}: only the VGG-style stacks ({', '.join(SUPPORTED_ARCHS)}) "
                                "are defined in PyTorch here (resnet18 and mobilenetv3 are not).")
    if arch == "custom":
        channels, pool_after = list(config.get("channels") or []), list(config.get("pool_after") or [])
    else:
        channels, pool_after = VGG_SPECS[arch]
        channels = list(channels)
        if config.get("pool_after") is not None:
            pool_after = list(config["pool_after"])
    if config.get("pred") == "best":  # Best Pred appends a copy of the last conv layer, without pooling
        channels = channels + [channels[-1]]
    if "arch_channels" in meta:
        if list(meta["arch_channels"]) != channels or list(meta["arch_pool_after"]) != list(pool_after):
            raise ValueError(f"the export's arch_channels {meta['arch_channels']} / arch_pool_after "
                             f"{meta['arch_pool_after']} do not match its config ({arch}: {channels} / {pool_after}).")
    if not channels:
        raise ValueError("the stack has no conv layers.")
    return channels, sorted(pool_after)


def check_supported(config):
    """Raises UnsupportedExport naming the first config value this module does not implement."""
    def need(key, allowed, default):
        v = _get(config, key, default)
        if v not in allowed:
            raise UnsupportedExport(f"config {key} = {v!r} is not supported here (supported: "
                                    f"{', '.join(map(repr, allowed))}).")
        return v

    need("conv_norm", ["none", "batch"], "none")
    need("local_loss", ["spatial-goodness", "none"], "spatial-goodness")
    need("inter_layer_norm", ["layernorm", "rms-scale"], "layernorm")
    need("pool", ["avg", "max", "rms"], "rms")
    need("goodness_bins", ["adaptive", "floor"], "adaptive")
    need("head_input", ["tap", "output"], "tap")
    need("fusion_head", ["concat", "per-layer-sum"], "concat")
    need("pred", ["fusion", "last", "best", "goodness-mean", "goodness-last", "goodness-logistic"], "fusion")
    need("block_norm", ["none", "layernorm"], "none")
    need("local_loss_at", ["block-output", "every-unit"], "block-output")
    if _get(config, "fal", False):
        raise UnsupportedExport("config fal = true (BiCovG's Feature Alignment Layer) is not supported here.")


# ---------------------------------------------------------------------------------------
# Pieces


def goodness_partition(alpha, last_channels, channels, height, width):
    """P_l of ASGE eq. 3: min(max(1, floor(alpha * C_last / C)), H, W)."""
    q = math.floor(alpha * last_channels / channels) if channels > 0 else 1
    return min(max(1, int(q)), height, width)


def spatial_goodness(y, p, bins="adaptive"):
    """Mean of y^2 over a P x P grid of patches, flattened channel-major to (n, C*P*P)."""
    sq = y * y
    if bins == "adaptive":   # patch i covers rows [floor(i*H/P), ceil((i+1)*H/P))
        g = F.adaptive_avg_pool2d(sq, p)
    else:                    # "floor": equal floor(H/P) patches from the top-left, the rest unused
        kh, kw = y.shape[2] // p, y.shape[3] // p
        g = F.avg_pool2d(sq, (kh, kw), stride=(kh, kw))[:, :, :p, :p]
    return g.flatten(1)


def rms_scale(x, eps):
    """x / (sqrt(mean(x^2 over C, H, W)) + eps), per sample."""
    rms = x.double().pow(2).flatten(1).mean(1).sqrt().float() + eps
    return x / rms.view(-1, *([1] * (x.dim() - 1)))


class FixedReadout(nn.Module):
    """The fixed random projection of a spatial-goodness objective: weight (D, N), bias (N)."""

    def __init__(self, features, classes):
        super().__init__()
        self.register_buffer("weight", torch.zeros(features, classes))
        self.register_buffer("bias", torch.zeros(classes))


class SpatialGoodnessReadout(nn.Module):
    """logits = goodness(y, P) @ readout.weight / T + readout.bias,  T = exp(log_temperature) or 1."""

    def __init__(self, channels, partition, classes, bins, learn_temperature):
        super().__init__()
        self.partition = partition
        self.bins = bins
        self.readout = FixedReadout(channels * partition * partition, classes)
        self.log_temperature = nn.Parameter(torch.zeros(1)) if learn_temperature else None

    def forward(self, y):
        proj = spatial_goodness(y, self.partition, self.bins) @ self.readout.weight
        if self.log_temperature is not None:
            proj = proj / torch.exp(self.log_temperature)
        return proj + self.readout.bias


class VGGUnit(nn.Module):
    """One conv layer of the stack:
        conv_norm none:  conv + ReLU -> [tap] -> pool -> (dropout) -> norm
        conv_norm batch: conv + BN + ReLU -> [tap] -> pool -> (dropout)
    decoupled_norm = false puts the norm in front of the tap instead."""

    def __init__(self, in_channels, out_channels, tap_hw, out_hw, pool, config, local):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
        self.uses_bn = _get(config, "conv_norm", "none") == "batch"
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-5) if self.uses_bn else None
        self.pool = pool                     # None, or (kind, size)
        self.coupled_norm = not self.uses_bn and not _get(config, "decoupled_norm", True)
        self.norm_kind = None if self.uses_bn else _get(config, "inter_layer_norm", "layernorm")
        self.rms_eps = float(_get(config, "rms_eps", 1.9287498479639178e-22))
        self.ln_eps = float(_get(config, "ln_eps", 1e-5))
        # The normalised shape is the tap's (coupled) or the pooled output's (decoupled).
        norm_hw = tap_hw if self.coupled_norm else out_hw
        self.norm_shape = (out_channels, *norm_hw)
        self.norm = None
        if self.norm_kind == "layernorm" and _get(config, "ln_affine", False):
            self.norm = nn.LayerNorm(self.norm_shape, eps=self.ln_eps, elementwise_affine=True)
        self.local = local

    def normalize(self, x):
        if self.norm_kind == "rms-scale":
            return rms_scale(x, self.rms_eps)
        if self.norm is not None:
            return self.norm(x)
        return F.layer_norm(x, self.norm_shape, eps=self.ln_eps)

    def forward(self, x):
        """Returns (tap, output)."""
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        y = F.relu(y)
        if self.coupled_norm:
            y = self.normalize(y)
        out = y
        if self.pool is not None:
            kind, k = self.pool
            if kind == "avg":
                out = F.avg_pool2d(out, k, stride=k)
            elif kind == "max":
                out = F.max_pool2d(out, k, stride=k)
            else:  # rms: sqrt of the window mean of squares
                out = F.avg_pool2d(out * out, k, stride=k).sqrt()
        if self.norm_kind is not None and not self.coupled_norm:
            out = self.normalize(out)
        return y, out


class FeatureHead(nn.Module):
    """Classifier on the spatial means of some layers: [BatchNorm1d] on the concatenation,
    then one Linear on it (concat) or one Linear per layer with the logits summed."""

    def __init__(self, widths, classes, batch_norm, per_layer_sum):
        super().__init__()
        self.widths = list(widths)
        total = sum(widths)
        self.bn = nn.BatchNorm1d(total, eps=1e-5) if batch_norm else None
        if per_layer_sum and len(widths) > 1:
            self.fc = nn.ModuleList(nn.Linear(w, classes) for w in widths)
            self.linear = None
        else:
            self.fc = None
            self.linear = nn.Linear(total, classes)

    def forward(self, features):
        z = torch.cat(features, 1)
        if self.bn is not None:
            z = self.bn(z)
        if self.linear is not None:
            return self.linear(z)
        parts = torch.split(z, self.widths, dim=1)
        logits = self.fc[0](parts[0])
        for fc, part in zip(self.fc[1:], parts[1:]):
            logits = logits + fc(part)
        return logits


def block_groups(spec, units_count, stages):
    """Unit indices of each block for the `blocks` config field (VGG stacks have no stem)."""
    if spec in ("per-unit", "per-layer", "per-residual-unit"):
        return [[i] for i in range(units_count)]
    if spec == "whole":
        return [list(range(units_count))]
    if spec == "per-stage":
        groups = []
        for i in range(units_count):
            if groups and stages[groups[-1][-1]] == stages[i]:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups
    if spec.startswith("groups-of-"):
        m = int(spec[len("groups-of-"):])
        return [list(range(s, min(s + m, units_count))) for s in range(0, units_count, m)]
    counts = [int(c.strip()) for c in spec.split(",")]
    if sum(counts) != units_count:
        raise ValueError(f"blocks = {spec!r} covers {sum(counts)} units, the stack has {units_count}.")
    groups, start = [], 0
    for n in counts:
        groups.append(list(range(start, start + n)))
        start += n
    return groups


# ---------------------------------------------------------------------------------------
# The network


class FFVGG(nn.Module):
    """forward(x) -> (predictor logits or None, [readout logits of each layer with a readout]).

    The predictor is the classifier head (pred fusion/last), the mean or last readout
    (goodness-mean/-last), their Logistic Fusion (goodness-logistic), or None (pred best:
    the prediction is one layer's readout, chosen on validation by ffrepro)."""

    def __init__(self, meta):
        super().__init__()
        config = meta["config"]
        check_supported(config)
        channels, pool_after = vgg_layout(meta)
        c_in, h, w = meta["input_shape"]
        classes = len(meta["class_names"])
        pool_kind = _get(config, "pool", "rms")
        pool_size = int(_get(config, "pool_size", 2))
        alpha = float(_get(config, "alpha", 1.0))
        bins = _get(config, "goodness_bins", "adaptive")
        has_local = _get(config, "local_loss", "spatial-goodness") != "none"
        self.config = config
        self.pred = _get(config, "pred", "fusion")
        self.classes = classes

        # Shapes, stages and blocks first: which units carry a readout depends on the blocks.
        shapes, stages = [], []
        for i, c in enumerate(channels):
            pooled = (i + 1) in pool_after
            oh, ow = ((h - pool_size) // pool_size + 1, (w - pool_size) // pool_size + 1) if pooled else (h, w)
            if oh < 1 or ow < 1:
                raise ValueError(f"the stack pools an input of {meta['input_shape']} to nothing at layer {i + 1}.")
            shapes.append(((h, w), (oh, ow)))
            stages.append(sum(1 for p in pool_after if p <= i))
            h, w = oh, ow
        self.blocks = block_groups(_get(config, "blocks", "per-unit"), len(channels), stages)
        every_unit = _get(config, "local_loss_at", "block-output") == "every-unit"
        carriers = set()
        if has_local:
            for g in self.blocks:
                carriers.update(g if every_unit else [g[-1]])
        self.readout_units = sorted(carriers)
        self.block_norm = _get(config, "block_norm", "none") == "layernorm"
        self.block_ends = {g[-1] for g in self.blocks}
        self.ln_eps = float(_get(config, "ln_eps", 1e-5))

        units = []
        for i, c in enumerate(channels):
            (th, tw), (oh, ow) = shapes[i]
            local = None
            if i in carriers:
                p = goodness_partition(alpha, channels[-1], c, th, tw)
                local = SpatialGoodnessReadout(c, p, classes, bins, bool(_get(config, "learn_temperature", False)))
            pool = (pool_kind, pool_size) if (i + 1) in pool_after else None
            units.append(VGGUnit(c_in, c, (th, tw), (oh, ow), pool, config, local))
            c_in = c
        self.units = nn.ModuleList(units)
        self.out_shapes = [(channels[i], *shapes[i][1]) for i in range(len(channels))]

        last = len(channels) - 1
        self.head_input = _get(config, "head_input", "tap")
        if self.pred in ("fusion", "last"):
            if self.pred == "fusion" and last < 1:
                raise ValueError("pred = fusion needs at least two conv layers (it reads layers 2..L).")
            self.head_taps = list(range(1, last + 1)) if self.pred == "fusion" else [last]
            widths = [channels[t] for t in self.head_taps]
            per_layer_sum = self.pred == "fusion" and _get(config, "fusion_head", "concat") == "per-layer-sum"
            self.head = FeatureHead(widths, classes, bool(_get(config, "fusion_batch_norm", False)), per_layer_sum)
        else:
            self.head_taps = []
            self.head = None
        if self.pred == "goodness-logistic":
            self.fusion = nn.Module()
            self.fusion.weight = nn.Parameter(torch.zeros(len(self.readout_units)))
        else:
            self.fusion = None
        if self.pred.startswith("goodness-") and not self.readout_units:
            raise ValueError(f"pred = {self.pred} needs readouts, but local_loss = none.")

    @property
    def readout_labels(self):
        """ffrepro's names of the readouts ("layer 3", or "block 2 (layer 3)" when blocks hold several units)."""
        labels = []
        every_unit = _get(self.config, "local_loss_at", "block-output") == "every-unit"
        for u in self.readout_units:
            b = next(k for k, g in enumerate(self.blocks) if u in g)
            single = len(self.blocks[b]) == 1 or every_unit
            labels.append(f"layer {u + 1}" if single else f"block {b + 1} (layer {u + 1})")
        return labels

    def forward(self, x):
        readouts, features = [], {}
        for i, unit in enumerate(self.units):
            tap, x = unit(x)
            if unit.local is not None:
                readouts.append(unit.local(tap))
            if i in self.head_taps:
                features[i] = (tap if self.head_input == "tap" else x).mean(dim=(2, 3))
            if self.block_norm and i in self.block_ends:
                x = F.layer_norm(x, x.shape[1:], eps=self.ln_eps)
        if self.head is not None:
            logits = self.head([features[t] for t in self.head_taps])
        elif self.pred == "goodness-logistic":
            gates = torch.sigmoid(self.fusion.weight.double()).float()
            logits = sum(g * r for g, r in zip(gates, readouts))
        elif self.pred == "goodness-last" or (self.pred == "goodness-mean" and len(readouts) == 1):
            logits = readouts[-1]
        elif self.pred == "goodness-mean":
            logits = torch.stack(readouts).mean(0)
        else:
            logits = None
        return logits, readouts


def build_model(metadata):
    """The network an export describes, with zero-filled tensors of the right shapes (load
    the file's tensors with load_state_dict(strict=True)). `metadata` is the safetensors
    `__metadata__` (strings) or its parse_metadata() form."""
    meta = metadata if isinstance(metadata.get("config"), dict) else parse_metadata(metadata)
    return FFVGG(meta)
