#!/usr/bin/env python3
"""Expected logits of torchvision's resnet18, mobilenet_v2 and mobilenet_v3_small (1000 classes)
for tests/torchvision_import.rs, computed by torch on the CPU in float32.

The weights are not random draws but a formula of each tensor's torchvision name and index, so
that the Rust test can write the same state dict without torch and without committing 60 MB of
weights; the two test images are formulas too. The committed file,
tests/data/torchvision/expected_logits.json, also lists each model's tensor names:

    python3 tools/torchvision_reference.py > tests/data/torchvision/expected_logits.json

Formula (float64, rounded to float32): s = sin(φ + 0.37·i), φ = 2π·(FNV-1a(name) mod 10000)/10000,
i the flat index; running_var 0.5 + 0.25·(s + 1); running_mean 0.1·s; a 1-D bias 0.05·s; a 1-D
weight (batch norm) 1 + 0.2·s; other weights s·√(3/fan_in), fan_in = numel / rows.
"""
import json
import math
import sys

import numpy as np
import torch
import torchvision

ARCHS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small"]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def fnv1a(name):
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) % 2**32
    return h


def formula(name, shape):
    n = int(np.prod(shape)) if shape else 1
    phase = 2 * math.pi * (fnv1a(name) % 10000) / 10000
    s = np.sin(phase + 0.37 * np.arange(n, dtype=np.float64))
    if name.endswith("running_var"):
        v = 0.5 + 0.25 * (s + 1)
    elif name.endswith("running_mean"):
        v = 0.1 * s
    elif len(shape) == 1 and name.endswith("bias"):
        v = 0.05 * s
    elif len(shape) == 1:
        v = 1 + 0.2 * s
    else:
        v = s * math.sqrt(3.0 / (n / shape[0]))
    return v.astype(np.float32).reshape(shape)


def image(k):
    """Test image k as uint8 H×W×3 (224×224)."""
    y, x = np.mgrid[0:224, 0:224]
    chans = []
    for c in range(3):
        if k == 0:
            v = (x * 3 + y * 7 + c * 85 + (x * y) % 31) % 256
        else:
            v = ((x ^ y) * 5 + c * 40) % 256
        chans.append(v)
    return np.stack(chans, axis=-1).astype(np.uint8)


def main():
    torch.set_grad_enabled(False)
    inputs = []
    for k in range(2):
        x = torch.from_numpy(image(k)).permute(2, 0, 1).float() / 255.0
        x = (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
        inputs.append(x)
    batch = torch.stack(inputs)
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    for arch in ARCHS:
        model = getattr(torchvision.models, arch)(num_classes=1000).eval()
        sd = model.state_dict()
        for name, t in sd.items():
            if name.endswith("num_batches_tracked"):
                continue
            t.copy_(torch.from_numpy(formula(name, tuple(t.shape))))
        logits = model(batch)
        assert torch.isfinite(logits).all(), arch
        out[arch] = logits.tolist()
        out[arch + "_names"] = sorted(n for n in sd if not n.endswith("num_batches_tracked"))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
