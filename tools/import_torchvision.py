#!/usr/bin/env python3
"""Converts a torchvision state dict (.pth) of resnet18, mobilenet_v2 or mobilenet_v3_small into
a dypose classifier checkpoint: torch reads the .pth, this script writes its tensors under
torchvision's names as safetensors (f32; BN's num_batches_tracked as i64), and
`dypose import-torchvision` maps the names and layouts and checks every tensor.

    python3 tools/import_torchvision.py resnet18-f37072fd.pth --arch resnet18 --out resnet18.safetensors
    dypose classify --checkpoint resnet18.safetensors --images cat.jpg

Needs torch (CPU is enough). --dypose names the binary (default: target/release/dypose).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch

ARCHS = {"resnet18": "resnet18", "mobilenet_v2": "mobilenetv2", "mobilenetv2": "mobilenetv2",
         "mobilenet_v3_small": "mobilenetv3-small", "mobilenetv3-small": "mobilenetv3-small"}


def write_safetensors(tensors, path):
    """The safetensors format: 8-byte little-endian header size, JSON header, raw data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.int64:
            dtype, data = "I64", t.numpy().astype("<i8").tobytes()
        else:
            dtype, data = "F32", t.float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth")
    ap.add_argument("--arch", required=True, choices=sorted(ARCHS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--width", default="1.0")
    ap.add_argument("--dypose", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "dypose"))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    state = torch.load(a.pth, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    with tempfile.TemporaryDirectory() as tmp:
        tv = os.path.join(tmp, "torchvision.safetensors")
        write_safetensors(state, tv)
        cmd = [a.dypose, "import-torchvision", "--arch", ARCHS[a.arch], "--width", a.width, "--weights", tv,
               "--out", a.out] + (["--force"] if a.force else [])
        return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
