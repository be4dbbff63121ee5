#!/usr/bin/env python3
"""Lists the tensors of a dypose checkpoint with the `safetensors` package, to check that the
file is readable outside dypose and carries the documented names and shapes.

    pip install safetensors numpy
    python3 tools/inspect_checkpoint.py CHECKPOINT.safetensors [--grep TEXT]
"""
import argparse
import sys

from safetensors.numpy import load_file
from safetensors import safe_open


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--grep", default="")
    a = ap.parse_args()
    with safe_open(a.path, framework="numpy") as f:
        meta = f.metadata()
    tensors = load_file(a.path)
    total = 0
    for name in sorted(tensors):
        t = tensors[name]
        total += t.size
        if a.grep in name:
            print("%-60s %-22s %s" % (name, list(t.shape), t.dtype))
    print("%d tensors, %d values, metadata %s" % (len(tensors), total, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
