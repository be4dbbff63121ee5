#!/usr/bin/env python3
"""The largest difference between the float32 tensors two checkpoints share, with the Python
standard library alone (the GPU hosts have no numpy). Exits 1 when it exceeds --tolerance or when
the two do not hold the same tensor names.

    python3 tools/compare_checkpoints.py A.safetensors B.safetensors [--tolerance 1e-6]
"""
import argparse
import array
import json
import struct
import sys


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            continue
        start, end = t["data_offsets"]
        values = array.array("f")
        values.frombytes(data[8 + n + start : 8 + n + end])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = values
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tolerance", type=float, default=1e-6)
    args = ap.parse_args()
    a, b = tensors(args.a), tensors(args.b)
    if a.keys() != b.keys():
        print(f"different tensors: only in A {sorted(a.keys() - b.keys())[:5]}, only in B {sorted(b.keys() - a.keys())[:5]}")
        return 1
    worst, where = 0.0, ""
    for name in sorted(a):
        if len(a[name]) != len(b[name]):
            print(f"{name}: {len(a[name])} vs {len(b[name])} values")
            return 1
        # A NaN on either side is as far as can be (max() would skip it).
        d = max((abs(x - y) if x == x and y == y else float("inf") for x, y in zip(a[name], b[name])), default=0.0)
        if d > worst or not where:
            worst, where = d, name
    print(f"largest difference {worst:.3g} ({where}), {len(a)} tensors")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
