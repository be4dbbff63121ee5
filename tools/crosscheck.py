#!/usr/bin/env python3
"""Runs pycocotools and `dypose eval` on the same GT and results files and diffs the 10 stats.

    pip install pycocotools
    cargo build --release
    python3 tools/crosscheck.py GT.json RESULTS.json [--spec SPEC.json] [--dypose target/release/dypose] [--tol 1e-9]

Exit status 0 when every stat agrees within --tol, 1 otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pycoco_eval import NAMES, pycocotools_stats  # noqa: E402


def dypose_stats(binary, gt_path, res_path, spec_path=None):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "stats.json")
        spec = ["--spec", spec_path] if spec_path else []
        run = subprocess.run([binary, "eval", "--gt", gt_path, "--results", res_path, "--json", out] + spec,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            raise RuntimeError("dypose eval failed: " + run.stderr.strip())
        stats = json.load(open(out))
    return [stats[n] for n in NAMES]


def compare(gt_path, res_path, binary, tol, quiet=False, spec_path=None):
    sigmas = json.load(open(spec_path))["sigmas"] if spec_path else None
    py = pycocotools_stats(gt_path, res_path, sigmas=sigmas)
    rs = dypose_stats(binary, gt_path, res_path, spec_path)
    worst = max(abs(a - b) for a, b in zip(py, rs))
    if not quiet or worst > tol:
        print("%-5s %22s %22s %10s" % ("stat", "pycocotools", "dypose", "|diff|"))
        for n, a, b in zip(NAMES, py, rs):
            print("%-5s %22.17g %22.17g %10.3g%s" % (n, a, b, abs(a - b), "  <-- differs" if abs(a - b) > tol else ""))
    return worst <= tol


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt")
    ap.add_argument("results")
    ap.add_argument("--dypose", default=os.path.join(ROOT, "target", "release", "dypose"))
    ap.add_argument("--tol", type=float, default=1e-9)
    ap.add_argument("--spec", help="a dypose keypoint spec: both score with its sigmas")
    a = ap.parse_args()
    ok = compare(a.gt, a.results, a.dypose, a.tol, spec_path=a.spec)
    print("equal within %g" % a.tol if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
