#!/usr/bin/env python3
"""Times the whole `dypose eval` process against the whole pycocotools script
(tools/pycoco_eval.py: load + evaluate + accumulate + summarize) on the same files, the two
alternating in one run, and prints the medians and their ratio.

    pip install pycocotools && cargo build --release
    python3 tools/gen_coco_like.py val --out bench-data     # 5000 images, 11.6k GT, ~107k results
    python3 tools/bench_eval.py [--runs 5] [--gt G --results R]

The last line is JSON: {"pycocotools_s": …, "dypose_s": …, "speedup": …, "runs": …}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", default=os.path.join(ROOT, "bench-data", "person_keypoints_val_like.json"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench-data", "results_val_like.json"))
    ap.add_argument("--dypose", default=os.path.join(ROOT, "target", "release", "dypose"))
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    for p in (a.gt, a.results):
        if not os.path.exists(p):
            sys.exit("%s is missing: run python3 tools/gen_coco_like.py val --out bench-data" % p)
    py = [sys.executable, os.path.join(HERE, "pycoco_eval.py"), a.gt, a.results]
    rs = [a.dypose, "eval", "--gt", a.gt, "--results", a.results]
    t_py, t_rs = [], []
    for k in range(a.runs):
        t_py.append(timed(py))
        t_rs.append(timed(rs))
        print("run %d: pycocotools %.2f s, dypose %.3f s" % (k + 1, t_py[-1], t_rs[-1]), file=sys.stderr)
    m_py, m_rs = statistics.median(t_py), statistics.median(t_rs)
    print("%-12s %10s %10s %10s" % ("", "median s", "min s", "max s"))
    print("%-12s %10.3f %10.3f %10.3f" % ("pycocotools", m_py, min(t_py), max(t_py)))
    print("%-12s %10.3f %10.3f %10.3f" % ("dypose", m_rs, min(t_rs), max(t_rs)))
    print("speedup (median ratio): %.1fx" % (m_py / m_rs))
    print(json.dumps({"pycocotools_s": m_py, "dypose_s": m_rs, "speedup": m_py / m_rs, "runs": a.runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
