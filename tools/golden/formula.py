"""Deterministic "random" tensors that Swift reproduces bit for bit (Tests/FFEngineTests/
Support/FormulaInit.swift), so full-size networks can be compared with PyTorch without
committing their weights.

value(name, i) = u in [0, 1) from splitmix64(fnv1a64(name) + i * 0x9E3779B97F4A7C15), 24 bits.
A tensor's values depend on its name and rank:
  *.running_var          0.5 + u
  *.running_mean         0.2 * (2u - 1)
  rank 1 *.weight        1 + 0.2 * (2u - 1)        (BatchNorm scale)
  rank 1 (other)         0.1 * (2u - 1)            (biases)
  rank >= 2              (2u - 1) * sqrt(6 / fan_in), fan_in = prod(shape[1:])  (He-uniform)
  "input:<tag>"          2u - 1
computed in float64 and rounded once to float32.
"""
import math

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def uniforms(name, count):
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + np.arange(count, dtype=np.uint64) * np.uint64(GOLDEN)
        z = z + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / 16777216.0


def tensor(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniforms(name, n)
    if name.endswith("running_var"):
        v = 0.5 + u
    elif name.endswith("running_mean"):
        v = 0.2 * (2 * u - 1)
    elif len(shape) == 1 and name.endswith(".weight"):
        v = 1 + 0.2 * (2 * u - 1)
    elif len(shape) == 1:
        v = 0.1 * (2 * u - 1)
    else:
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * math.sqrt(6.0 / fan_in)
    return v.astype(np.float32).reshape(shape)


def inputs(tag, shape):
    return (2 * uniforms("input:" + tag, int(np.prod(shape))) - 1).astype(np.float32).reshape(shape)


def fill_module(module, prefix=""):
    """Overwrites every parameter and BatchNorm statistic of a torch module by name."""
    import torch
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            t.copy_(torch.from_numpy(tensor(prefix + name, tuple(t.shape))))


def torchvision_models():
    """torchvision's model code without its compiled operators (the CPU wheel of torch here
    lacks the matching torchvision::nms build; the models need none of them)."""
    import os
    import site
    import sys
    import types
    if "torchvision.models.resnet" not in sys.modules:
        root = None
        for d in site.getsitepackages():
            if os.path.isdir(os.path.join(d, "torchvision")):
                root = os.path.join(d, "torchvision")
        pkg = types.ModuleType("torchvision")
        pkg.__path__ = [root]
        sys.modules["torchvision"] = pkg
    import torchvision.models.mobilenetv3 as mobilenetv3
    import torchvision.models.resnet as resnet
    return resnet, mobilenetv3
