#!/usr/bin/env python3
"""The reference: pycocotools' COCO keypoint evaluation of a results file, as SimpleBaseline
and mmpose run it (load GT, loadRes, evaluate, accumulate, summarize).

    pip install pycocotools
    python3 tools/pycoco_eval.py GT.json RESULTS.json [--json OUT.json] [--spec SPEC.json]

With --spec (a dypose keypoint spec), pycocotools scores another keypoint set: its
`params.kpt_oks_sigmas` are set to the spec's sigmas, as xtcocotools-style tools do for
CrowdPose, hands or animals.
"""
import argparse
import contextlib
import io
import json
import sys

NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


def pycocotools_stats(gt_path, res_path, quiet=True, sigmas=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        gt = COCO(gt_path)
        dt = gt.loadRes(res_path)
        ev = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            import numpy as np
            ev.params.kpt_oks_sigmas = np.array(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    if not quiet:
        print(out.getvalue(), end="")
    return [float(s) for s in ev.stats]


def xtcocotools_stats(gt_path, res_path, sigmas, iou_type="keypoints", use_area=False):
    """xtcocotools' (mmpose's evaluator) stats: `iou_type` "keypoints" (10 numbers) or
    "keypoints_crowd" (CrowdPose's 9), with `use_area` as mmpose's configs set it."""
    import numpy as np
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(res_path)
        ev = COCOeval(gt, dt, iou_type, np.array(sigmas), use_area=use_area)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt")
    ap.add_argument("results")
    ap.add_argument("--json", help="write the 10 stats here")
    ap.add_argument("--spec", help="a dypose keypoint spec: score with its sigmas")
    a = ap.parse_args()
    sigmas = json.load(open(a.spec))["sigmas"] if a.spec else None
    stats = pycocotools_stats(a.gt, a.results, quiet=False, sigmas=sigmas)
    if a.json:
        json.dump(dict(zip(NAMES, stats)), open(a.json, "w"), indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
