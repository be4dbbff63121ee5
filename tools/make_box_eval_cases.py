#!/usr/bin/env python3
"""Builds the COCO box evaluation cases in tests/data/box_eval_cases/ and their expected stats
from pycocotools' COCOeval(iouType="bbox") (`pip install pycocotools`).

Each case is a directory with gt.json, results.json and expected.json ({"stats": [12 numbers],
"pycocotools": version}); each targets one branch of the box metric (crowd regions, score ties,
more than 100 detections, area-range boundaries, empty images, ...). The Rust test
`tests/box_eval_vs_pycocotools.rs` checks that `dypose eval --iou-type bbox` reproduces every
stat to 1e-9 without needing Python.

    python3 tools/make_box_eval_cases.py            # (re)write all cases
    python3 tools/make_box_eval_cases.py --check    # only verify the committed expected.json
    python3 tools/make_box_eval_cases.py --fuzz 200 # fresh random cases, pycocotools vs target/release/dypose
"""
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_cases import ROOT, keep_failure, parse_args, write_or_check  # noqa: E402
OUT = os.path.join(ROOT, "tests", "data", "box_eval_cases")
SAMPLE = os.path.join(ROOT, "data", "coco-sample", "annotations")
NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def pycocotools_box_stats(gt_path, res_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(res_path)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]


def dypose_box_stats(binary, gt_path, res_path):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "stats.json")
        run = subprocess.run([binary, "eval", "--iou-type", "bbox", "--gt", gt_path, "--results", res_path,
                              "--json", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            raise RuntimeError("dypose eval failed: " + run.stderr.strip())
        stats = json.load(open(out))
    return [stats[n] for n in NAMES]


class Case:
    """Accumulates images, GT boxes and detected boxes for one case."""

    def __init__(self, seed, ncat=1):
        self.rng = random.Random(seed)
        self.images, self.anns, self.results = [], [], []
        self.categories = [{"id": k + 1, "name": "person" if k == 0 else "c%d" % k} for k in range(ncat)]
        self.next_ann = 1

    def image(self, iid, w=640, h=480):
        self.images.append({"id": iid, "file_name": "%012d.jpg" % iid, "width": w, "height": h})
        return iid

    def gt(self, iid, box, cat=1, iscrowd=0, area=None, ann_id=None, **extra):
        """A GT box; its area (what selects the area range) is the mask's, here 0.8 of the box unless given."""
        ann = {"id": self.next_ann if ann_id is None else ann_id, "image_id": iid, "category_id": cat,
               "iscrowd": iscrowd, "bbox": [round(v, 2) for v in box],
               "area": round(box[2] * box[3] * .8, 3) if area is None else area}
        ann.update(extra)
        self.next_ann += 1
        self.anns.append(ann)
        return ann

    def random_gt(self, iid, lo=8, hi=400, **kw):
        r = self.rng
        w, h = r.uniform(lo, hi), r.uniform(lo, hi) * r.uniform(.8, 2.5)
        return self.gt(iid, [r.uniform(0, 640 - min(w, 600)), r.uniform(0, 480 - min(h, 440)), w, h], **kw)

    def detect(self, ann, noise, score, cat=None, iid=None, decimals=3):
        """A box near a GT's, each side moved by `noise` × the box's size."""
        r = self.rng
        x, y, w, h = ann["bbox"]
        box = [x + r.gauss(0, noise * w), y + r.gauss(0, noise * h), w * (1 + r.gauss(0, noise)),
               h * (1 + r.gauss(0, noise))]
        return self.box(ann["image_id"] if iid is None else iid, box, score, ann["category_id"] if cat is None else cat,
                        decimals)

    def box(self, iid, box, score, cat=1, decimals=3):
        res = {"image_id": iid, "category_id": cat, "bbox": [round(v, decimals) for v in box], "score": score}
        self.results.append(res)
        return res

    def false_positive(self, iid, score, cat=1):
        r = self.rng
        w, h = r.uniform(5, 300), r.uniform(5, 300)
        return self.box(iid, [r.uniform(0, 600), r.uniform(0, 440), w, h], score, cat)

    def files(self):
        gt = {"info": {"description": "dypose box evaluation case"}, "licenses": [], "images": self.images,
              "annotations": self.anns, "categories": self.categories}
        return gt, self.results


def scene(c, iid, objects, noise=(.005, .15), fps=1, ncat=1):
    r = c.rng
    c.image(iid)
    for _ in range(objects):
        a = c.random_gt(iid, cat=r.randint(1, ncat))
        for _ in range(r.choice([0, 1, 1, 1, 2])):
            c.detect(a, r.uniform(*noise), round(r.random(), 6))
    for _ in range(fps):
        c.false_positive(iid, round(r.random() * .6, 6), cat=r.randint(1, ncat))


# ---------------------------------------------------------------------------------------------
# The cases. Each returns (gt dict, results list).

def case_perfect():
    c = Case(1)
    for iid in range(1, 6):
        c.image(iid)
        for _ in range(3):
            a = c.random_gt(iid)
            c.box(iid, a["bbox"], 1.0)
    return c.files()


def case_real_sample_detector_boxes():
    """The 4 real val2017 images: their person annotations against the detector's boxes."""
    gt = json.load(open(os.path.join(SAMPLE, "person_keypoints_sample.json")))
    dets = json.load(open(os.path.join(SAMPLE, "person_detections_sample.json")))
    return gt, dets


def case_real_sample_gt_fed_back():
    gt = json.load(open(os.path.join(SAMPLE, "person_keypoints_sample.json")))
    return gt, [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
                for a in gt["annotations"]]


def case_noise_levels():
    c = Case(3)
    for iid in range(1, 41):
        scene(c, iid, 1 + iid % 5)
    return c.files()


def case_crowd_regions():
    """Detections inside a crowd box match it any number of times and are ignored; IoU with a
    crowd is the intersection over the detection's own area."""
    c = Case(4)
    for iid in range(1, 9):
        c.image(iid)
        c.gt(iid, [100, 80, 400, 300], iscrowd=1)
        for k in range(6):
            inside = [120 + 60 * k, 100 + 10 * k, 50, 120]
            if k < 2:
                a = c.gt(iid, inside)
                c.detect(a, .02, round(.9 - .1 * k, 3))
            else:
                c.box(iid, inside, round(.5 + .05 * k, 3))
        c.box(iid, [60, 60, 100, 100], .45)  # half inside the crowd
        c.false_positive(iid, .3)
    return c.files()


def case_crowd_and_regular_overlap():
    """A detection overlapping both a regular GT and a crowd takes the regular one first."""
    c = Case(5)
    for iid in range(1, 6):
        c.image(iid)
        c.gt(iid, [0, 0, 300, 300], iscrowd=1)
        a = c.gt(iid, [50, 50, 100, 200])
        c.box(iid, [55, 50, 100, 200], .9)
        c.box(iid, [50, 55, 100, 200], .8)  # the regular GT is taken: this one lands in the crowd
        c.box(iid, [400, 300, 50, 50], .7)
        c.detect(a, .3, .6)
    return c.files()


def case_num_keypoints_zero_is_not_ignored():
    """Unlike keypoint evaluation, boxes of persons without labelled joints count."""
    c = Case(6)
    for iid in range(1, 6):
        c.image(iid)
        for k in range(3):
            a = c.random_gt(iid, num_keypoints=0, keypoints=[0] * 51)
            if k:
                c.detect(a, .03, round(c.rng.random(), 4))
    return c.files()


def case_gt_ignore_field_overwritten():
    c = Case(7)
    for iid in range(1, 6):
        c.image(iid)
        a = c.random_gt(iid, ignore=1)
        c.detect(a, .02, .9)
        b = c.random_gt(iid, iscrowd=1, ignore=0)
        c.detect(b, .02, .8)
    return c.files()


def case_more_than_100_detections():
    """150 detections in one image: maxDets 1, 10 and 100 each cut a different curve."""
    c = Case(8)
    c.image(1)
    for _ in range(40):
        a = c.random_gt(1, lo=10, hi=120)
        c.detect(a, .05, round(c.rng.random(), 5))
    for _ in range(110):
        c.false_positive(1, round(c.rng.random(), 5))
    c.image(2)
    for k in range(12):
        a = c.gt(2, [10 + 50 * k, 20, 40, 90])
        c.detect(a, .01, round(1 - .01 * k, 3))
    return c.files()


def case_tied_scores_within_image():
    c = Case(9)
    for iid in range(1, 8):
        c.image(iid)
        a = c.random_gt(iid)
        for _ in range(3):
            c.detect(a, .08, .5)
        c.false_positive(iid, .5)
    return c.files()


def case_tied_scores_across_images():
    c = Case(10)
    for iid in range(1, 16):
        c.image(iid)
        a = c.random_gt(iid)
        c.detect(a, .1 if iid % 2 else .01, .7)
        c.false_positive(iid, .7)
    return c.files()


def case_area_range_boundaries_gt():
    """GT areas exactly at 0, 32², 96² and 1e10, and just either side."""
    c = Case(11)
    areas = [0, 1, 1023.999, 1024, 1024.001, 9215.999, 9216, 9216.001, 1e10]
    for iid, area in enumerate(areas, 1):
        c.image(iid)
        a = c.random_gt(iid, area=area)
        c.detect(a, .03, round(c.rng.random(), 4))
        c.false_positive(iid, .2)
    return c.files()


def case_area_range_boundaries_detections():
    """Unmatched detections whose w·h is exactly 32² or 96², or just either side."""
    c = Case(12)
    c.image(1)
    c.gt(1, [0, 0, 50, 50])
    for k, (w, h) in enumerate([(32, 32), (31.99, 32), (32, 32.01), (96, 96), (95.99, 96), (96, 96.01),
                                (16, 64), (48, 192), (0, 10), (10, 0)]):
        c.box(1, [300 + k, 200, w, h], round(.9 - .05 * k, 2))
    c.box(1, [0, 0, 50, 50], .5)
    return c.files()


def case_iou_at_thresholds():
    """Detections whose IoU with their GT is exactly 0.5, 0.75 or 0.95, or just either side."""
    c = Case(13)
    iid = 0
    for iou in [.5, .75, .95, .6, .9]:
        for eps in [-1e-6, 0, 1e-6]:
            iid += 1
            c.image(iid)
            c.gt(iid, [100, 100, 100, 100])
            # A box sharing the left edge, width w: IoU = w / 100 (w ≤ 100).
            c.box(iid, [100, 100, 100 * (iou + eps), 100], .9, decimals=9)
    return c.files()


def case_several_categories():
    c = Case(14, ncat=3)
    for iid in range(1, 21):
        scene(c, iid, 1 + iid % 4, ncat=3)
    return c.files()


def case_category_without_regular_gt():
    c = Case(15, ncat=2)
    for iid in range(1, 5):
        c.image(iid)
        a = c.random_gt(iid)
        c.detect(a, .05, .8)
        b = c.random_gt(iid, cat=2, iscrowd=1)
        c.detect(b, .05, .7)
    return c.files()


def case_results_with_unknown_categories():
    c = Case(16)
    for iid in range(1, 5):
        c.image(iid)
        a = c.random_gt(iid)
        c.detect(a, .03, .9)
        c.detect(a, .03, .95, cat=7)
    return c.files()


def case_images_without_gt_or_results():
    """Empty images: some without GT, some without results, some with neither."""
    c = Case(17)
    for iid in range(1, 13):
        c.image(iid)
        if iid % 3 != 0:
            a = c.random_gt(iid)
            if iid % 4 != 0:
                c.detect(a, .04, round(c.rng.random(), 3))
        elif iid % 2:
            c.false_positive(iid, .4)
    return c.files()


def case_empty_gt_annotations():
    c = Case(18)
    for iid in range(1, 4):
        c.image(iid)
        c.false_positive(iid, .5)
    return c.files()


def case_gt_id_zero():
    c = Case(19)
    for iid in range(1, 5):
        c.image(iid)
        a = c.random_gt(iid, ann_id=0 if iid == 2 else None)
        c.detect(a, .02, .9)
        c.false_positive(iid, .3)
    return c.files()


def case_negative_and_zero_scores():
    c = Case(20)
    for iid in range(1, 6):
        c.image(iid)
        a = c.random_gt(iid)
        c.detect(a, .03, [-1.0, 0, 0.0, -0.5, 1e-9][iid - 1])
        c.false_positive(iid, -2.0)
    return c.files()


def case_degenerate_boxes():
    """Zero and negative widths and heights, boxes at the image border and beyond it."""
    c = Case(21)
    for iid in range(1, 6):
        c.image(iid)
        a = c.random_gt(iid)
        x, y, w, h = a["bbox"]
        c.box(iid, [x, y, 0, h], .9)
        c.box(iid, [x, y, -w, h], .85)
        c.box(iid, [x + w, y, -w, -h], .8)
        c.box(iid, [x - 700, y, w + 700, h], .7)
        c.detect(a, .02, .6)
    c.gt(5, [-20, -20, 100, 100])
    c.box(5, [-20, -20, 100, 100], .95)
    return c.files()


def case_keypoint_results_with_boxes():
    """A keypoint results file that carries boxes is also a box results file."""
    c = Case(22)
    for iid in range(1, 6):
        c.image(iid)
        for _ in range(2):
            a = c.random_gt(iid)
            r = c.detect(a, .04, round(c.rng.random(), 4))
            r["keypoints"] = [1, 2, 1] * 17
    return c.files()


def case_small_objects_only():
    c = Case(23)
    for iid in range(1, 11):
        c.image(iid)
        for _ in range(4):
            a = c.random_gt(iid, lo=4, hi=30)
            c.detect(a, .1, round(c.rng.random(), 4))
    return c.files()


def case_duplicate_detections():
    c = Case(24)
    for iid in range(1, 9):
        c.image(iid)
        a = c.random_gt(iid)
        for k in range(4):
            c.detect(a, .02 * k, round(.9 - .1 * k, 2))
    return c.files()


def case_unsorted_results_large_ids():
    c = Case(25)
    big = 2 ** 35
    for n in range(20):
        scene(c, big + 7 * n, 3)
    c.rng.shuffle(c.results)
    return c.files()


def random_case(seed, images):
    def build():
        c = Case(seed, ncat=2)
        for iid in range(1, images + 1):
            scene(c, iid, c.rng.randint(0, 8), fps=c.rng.randint(0, 4), ncat=2)
        return c.files()
    return build


def fuzz_case(seed):
    """A random case mixing every quirk: categories, crowds, GT id 0, area boundaries, ties,
    >100 detections, degenerate boxes, big ids."""
    r = random.Random(seed)
    ncat = r.choice([1, 1, 2, 3])
    c = Case(seed, ncat)
    big = r.choice([0, 2 ** 35])
    decimals = r.choice([1, 2, 6])
    for n in range(r.randint(1, 40)):
        iid = big + n * r.randint(1, 9) + n
        if any(im["id"] == iid for im in c.images):
            continue
        c.image(iid)
        for _ in range(r.randint(0, 6)):
            area = r.choice([None, None, None, 1024, 9216, r.uniform(0, 2000), r.uniform(5000, 12000)])
            a = c.random_gt(iid, lo=r.choice([2, 10, 40]), cat=r.randint(1, ncat + (1 if r.random() < .05 else 0)),
                            iscrowd=int(r.random() < .1), area=area, ann_id=0 if r.random() < .02 else None)
            for _ in range(r.randint(0, 3)):
                c.detect(a, r.uniform(.001, .3), round(r.random(), decimals),
                         cat=r.randint(1, ncat + 1) if r.random() < .1 else None, decimals=r.choice([0, 2, 6]))
        for _ in range(r.randint(0, 130) if r.random() < .1 else r.randint(0, 4)):
            c.false_positive(iid, round(r.random() * .7, decimals), cat=r.randint(1, ncat))
        if r.random() < .1:
            c.box(iid, [5, 5, r.choice([32, 96, 0, -5]), r.choice([32, 96, 40])], round(r.random(), decimals))
    used = [a["id"] for a in c.anns]
    if len(set(used)) < len(used):  # at most one GT with id 0
        seen = set()
        for a in c.anns:
            if a["id"] in seen:
                a["id"] = max(used) + 1 + len(seen)
            seen.add(a["id"])
    gt, res = c.files()
    r.shuffle(res)
    return gt, res


def fuzz(count, seed, binary):
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        for k in range(count):
            gt, res = fuzz_case(seed + k)
            if not res:
                continue  # pycocotools cannot load an empty results list
            g, p = os.path.join(d, "gt.json"), os.path.join(d, "res.json")
            json.dump(gt, open(g, "w"))
            json.dump(res, open(p, "w"))
            py, rs = pycocotools_box_stats(g, p), dypose_box_stats(binary, g, p)
            if max(abs(a - b) for a, b in zip(py, rs)) > 1e-9:
                failed += 1
                keep = keep_failure("box-fuzz-failure-%d" % (seed + k), [g, p])
                print("case seed %d differs; kept in %s\n  pycocotools %s\n  dypose      %s" % (seed + k, keep, py, rs))
    print("fuzz: %d cases, %d differ" % (count, failed))
    return 1 if failed else 0


CASES = {
    "perfect": case_perfect,
    "real_sample_detector_boxes": case_real_sample_detector_boxes,
    "real_sample_gt_fed_back": case_real_sample_gt_fed_back,
    "noise_levels": case_noise_levels,
    "crowd_regions": case_crowd_regions,
    "crowd_and_regular_overlap": case_crowd_and_regular_overlap,
    "num_keypoints_zero_is_not_ignored": case_num_keypoints_zero_is_not_ignored,
    "gt_ignore_field_overwritten": case_gt_ignore_field_overwritten,
    "more_than_100_detections": case_more_than_100_detections,
    "tied_scores_within_image": case_tied_scores_within_image,
    "tied_scores_across_images": case_tied_scores_across_images,
    "area_range_boundaries_gt": case_area_range_boundaries_gt,
    "area_range_boundaries_detections": case_area_range_boundaries_detections,
    "iou_at_thresholds": case_iou_at_thresholds,
    "several_categories": case_several_categories,
    "category_without_regular_gt": case_category_without_regular_gt,
    "results_with_unknown_categories": case_results_with_unknown_categories,
    "images_without_gt_or_results": case_images_without_gt_or_results,
    "empty_gt_annotations": case_empty_gt_annotations,
    "gt_id_zero": case_gt_id_zero,
    "negative_and_zero_scores": case_negative_and_zero_scores,
    "degenerate_boxes": case_degenerate_boxes,
    "keypoint_results_with_boxes": case_keypoint_results_with_boxes,
    "small_objects_only": case_small_objects_only,
    "duplicate_detections": case_duplicate_detections,
    "unsorted_results_large_ids": case_unsorted_results_large_ids,
    "random_a": random_case(101, 60),
    "random_b": random_case(102, 200),
}


def main():
    args = parse_args(__doc__)
    if args.fuzz:
        return fuzz(args.fuzz, args.seed, args.dypose)
    return write_or_check(CASES, OUT, lambda _, g, r: pycocotools_box_stats(g, r), args.check)


if __name__ == "__main__":
    sys.exit(main())
