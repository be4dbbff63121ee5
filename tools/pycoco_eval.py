#!/usr/bin/env python3
"""The reference: pycocotools' COCO keypoint evaluation of a results file, as SimpleBaseline
and mmpose run it (load GT, loadRes, evaluate, accumulate, summarize).

    pip install pycocotools
    python3 tools/pycoco_eval.py GT.json RESULTS.json [--json OUT.json]
"""
import argparse
import contextlib
import io
import json
import sys

NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


def pycocotools_stats(gt_path, res_path, quiet=True):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        gt = COCO(gt_path)
        dt = gt.loadRes(res_path)
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if not quiet:
        print(out.getvalue(), end="")
    return [float(s) for s in ev.stats]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt")
    ap.add_argument("results")
    ap.add_argument("--json", help="write the 10 stats here")
    a = ap.parse_args()
    stats = pycocotools_stats(a.gt, a.results, quiet=False)
    if a.json:
        json.dump(dict(zip(NAMES, stats)), open(a.json, "w"), indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
