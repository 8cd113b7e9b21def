#!/usr/bin/env python3
"""Fixtures for transfer learning (`repro run ... --init-from FILE`), computed with PyTorch.

Run by hand (CI never needs torch):
    .venv-golden/bin/pip install torch==2.13.0 torchvision==0.28.0 safetensors h5py numpy
    .venv-golden/bin/python tools/golden/make_transfer_fixture.py Tests/FFEngineTests/Fixtures

Writes
  transfer_dtypes.safetensors  a small file written by the safetensors library itself: formula
                               tensors stored as F32, F16, BF16, F64 and I64, plus __metadata__,
                               to check our parser against the reference writer;
  transfer_forward.h5          for torchvision's resnet18, mobilenet_v3_small and
                               mobilenet_v3_large with formula weights (tools/golden/formula.py)
                               in eval mode: the state_dict names and shapes (attribute
                               "state_dict"), and the backbone output (resnet: layer4; mobilenet:
                               features) for the formula input "transfer/<case>" of 2x3x64x64.
The Swift test writes the same weights under the same names into a .safetensors file, loads it
into our networks and compares the forward pass to these outputs (1e-4 relative).
"""
import json
import sys

import h5py
import numpy as np
import torch

import formula

torch.set_num_threads(2)


def main(out):
    # 1. dtypes through the reference writer.
    t = {
        "a.f32.weight": formula.tensor("a.f32.weight", (3, 4)),
        "b.f16.weight": formula.tensor("b.f16.weight", (2, 5)).astype(np.float16),
        "c.f64.bias": formula.tensor("c.f64.bias", (7,)).astype(np.float64),
        "d.count": np.array([3, -1, 1 << 40], dtype=np.int64),
    }
    bf = formula.tensor("e.bf16.weight", (2, 3))
    # BF16 as the library stores it (it has no numpy bf16): via torch.
    from safetensors.torch import save_file as save_torch
    tt = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in t.items()}
    tt["e.bf16.weight"] = torch.from_numpy(bf).to(torch.bfloat16)
    save_torch(tt, f"{out}/transfer_dtypes.safetensors", metadata={"format": "pt", "source": "make_transfer_fixture"})

    # 2. forward passes of formula-initialised torchvision networks.
    resnet, mbv3 = formula.torchvision_models()
    cases = [("resnet18", resnet.resnet18(), lambda m, x: m.layer4(m.layer3(m.layer2(m.layer1(
                 m.maxpool(m.relu(m.bn1(m.conv1(x))))))))),
             ("mobilenetv3-small", mbv3.mobilenet_v3_small(), lambda m, x: m.features(x)),
             ("mobilenetv3-large", mbv3.mobilenet_v3_large(), lambda m, x: m.features(x))]
    with h5py.File(f"{out}/transfer_forward.h5", "w") as h5:
        h5.attrs["generator"] = f"tools/golden/make_transfer_fixture.py, torch {torch.__version__}"
        for name, m, backbone in cases:
            formula.fill_module(m)
            m.eval()
            x = torch.from_numpy(formula.inputs(f"transfer/{name}", (2, 3, 64, 64)))
            with torch.no_grad():
                y = backbone(m, x)
            g = h5.create_group(name)
            g.attrs["state_dict"] = json.dumps([[k, list(v.shape), str(v.dtype)] for k, v in m.state_dict().items()])
            g["output"] = y.numpy().astype(np.float32)
            print(name, tuple(y.shape), len(m.state_dict()), "tensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/FFEngineTests/Fixtures")
