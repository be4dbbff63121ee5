#!/usr/bin/env python3
"""`dypose bench data` against the Python/OpenCV pipeline (tools/bench_data_python.py) on the
same annotations and images, alternating in one run; prints medians and their ratio.

    cargo build --release && pip install opencv-python-headless numpy
    python3 tools/bench_data_compare.py [--runs 5] [--samples 512] [--workers 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def last_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", default=os.path.join(ROOT, "data/coco-sample/annotations/person_keypoints_sample.json"))
    ap.add_argument("--images", default=os.path.join(ROOT, "data/coco-sample/val2017"))
    ap.add_argument("--dypose", default=os.path.join(ROOT, "target/release/dypose"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    a = ap.parse_args()
    common = ["--ann", a.ann, "--images", a.images, "--samples", str(a.samples), "--workers", str(a.workers)]
    rs_cmd = [a.dypose, "bench", "data"] + common
    py_cmd = [sys.executable, os.path.join(HERE, "bench_data_python.py")] + common
    rs, py = [], []
    for k in range(a.runs):
        py.append(last_json(py_cmd))
        rs.append(last_json(rs_cmd))
        print("run %d: python %.1f samples/s, dypose %.1f samples/s" % (k + 1, py[-1], rs[-1]), file=sys.stderr)
    m_rs, m_py = statistics.median(rs), statistics.median(py)
    print("%-22s %12s %12s %12s" % ("samples/s (%d workers)" % a.workers, "median", "min", "max"))
    print("%-22s %12.1f %12.1f %12.1f" % ("python + opencv", m_py, min(py), max(py)))
    print("%-22s %12.1f %12.1f %12.1f" % ("dypose", m_rs, min(rs), max(rs)))
    print("ratio of medians: %.2fx; dypose per core: %.1f samples/s" % (m_rs / m_py, m_rs / a.workers))
    print(json.dumps({"python_samples_per_s": m_py, "dypose_samples_per_s": m_rs, "ratio": m_rs / m_py, "workers": a.workers, "runs": a.runs}))


if __name__ == "__main__":
    main()
