#!/usr/bin/env python3
"""Builds the COCO keypoint evaluation cases in tests/data/eval_cases/ and their expected
stats from pycocotools (`pip install pycocotools`).

Each case is a directory with gt.json, results.json and expected.json
({"stats": [10 numbers], "pycocotools": version}). Each case targets one branch of
COCOeval(iouType="keypoints"); the Rust test `tests/eval_vs_pycocotools.rs` checks that
`dypose` reproduces every stat to 1e-9 without needing Python. Cases of other keypoint sets
(CrowdPose's 14 joints, a hand's 21, a 5-joint tool) also hold spec.json, the dypose keypoint
spec; pycocotools scores them with `params.kpt_oks_sigmas` set to its sigmas.

    python3 tools/make_eval_cases.py            # (re)write all cases
    python3 tools/make_eval_cases.py --check    # only verify the committed expected.json
    python3 tools/make_eval_cases.py --fuzz 200 # fresh random cases, pycocotools vs target/release/dypose
"""
import copy
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pycoco_eval import pycocotools_stats  # noqa: E402
from eval_cases import ROOT, keep_failure, parse_args, write_or_check  # noqa: E402
OUT = os.path.join(ROOT, "tests", "data", "eval_cases")
SAMPLE_GT = os.path.join(ROOT, "data", "coco-sample", "annotations", "person_keypoints_sample.json")

K = 17
NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
         "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
         "left_knee", "right_knee", "left_ankle", "right_ankle"]
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# A standing person, height 1, centred at the origin, y down.
POSE = [(0, -.42), (.03, -.45), (-.03, -.45), (.06, -.43), (-.06, -.43), (.12, -.3), (-.12, -.3),
        (.16, -.12), (-.16, -.12), (.18, .05), (-.18, .05), (.08, .05), (-.08, .05), (.09, .28),
        (-.09, .28), (.1, .5), (-.1, .5)]


def category(cid=1, name="person", names=NAMES, skeleton=SKELETON):
    return {"id": cid, "name": name, "supercategory": name, "keypoints": names, "skeleton": skeleton}


def load_spec(name):
    return json.load(open(os.path.join(ROOT, "configs", "keypoints", name + ".json")))


# Keypoint sets other than COCO's: two shipped specs and a small tool with extreme sigmas.
TIPS5 = {"name": "tips5", "keypoints": ["handle", "left_jaw", "right_jaw", "left_tip", "right_tip"],
         "flip_pairs": [[1, 2], [3, 4]], "sigmas": [0.25, 0.004, 0.004, 0.11, 0.11],
         "limbs": [[0, 1], [0, 2], [1, 3], [2, 4]]}


def spec_pose(spec, seed):
    """A fixed random shape of the set's joints, height 1, centred at the origin."""
    r = random.Random(seed)
    return [(round(r.uniform(-.25, .25), 3), round(r.uniform(-.5, .5), 3)) for _ in spec["keypoints"]]


def spec_category(spec, cid=1):
    return category(cid, spec["name"], spec["keypoints"], [[a + 1, b + 1] for a, b in spec["limbs"]])


class Case:
    """Accumulates images, GT annotations and results for one case."""

    def __init__(self, seed, categories=None, pose=None):
        self.rng = random.Random(seed)
        self.images, self.anns, self.results = [], [], []
        self.categories = categories if categories is not None else [category()]
        self.pose = pose if pose is not None else POSE
        self.next_ann = 1

    def image(self, iid, w=640, h=480):
        self.images.append({"id": iid, "file_name": "%012d.jpg" % iid, "width": w, "height": h})
        return iid

    def person(self, iid, cx, cy, height, visible=1.0, cat=1, iscrowd=0, area=None, ann_id=None, **extra):
        """A GT person; joints are labelled (v=2, sometimes 1) with probability `visible`."""
        r = self.rng
        kps = []
        for (px, py) in self.pose:
            if r.random() < visible:
                x = round(cx + (px + r.gauss(0, .02)) * height, 2)
                y = round(cy + (py + r.gauss(0, .02)) * height, 2)
                kps += [x, y, 2 if r.random() < .8 else 1]
            else:
                kps += [0, 0, 0]
        w = .45 * height
        bbox = [round(cx - w / 2, 2), round(cy - .55 * height, 2), round(w, 2), round(1.1 * height, 2)]
        ann = {"id": self.next_ann if ann_id is None else ann_id, "image_id": iid, "category_id": cat,
               "iscrowd": iscrowd, "keypoints": kps, "num_keypoints": sum(1 for v in kps[2::3] if v > 0),
               "bbox": bbox, "area": round(area if area is not None else bbox[2] * bbox[3] * .55, 3),
               "segmentation": [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]]}
        ann.update(extra)
        self.next_ann += 1
        self.anns.append(ann)
        return ann

    def detect(self, ann, noise, score, cat=None, iid=None, drop=0.0):
        """A result near a GT's joints (unlabelled joints guessed from the pose), noise in units of the GT's height."""
        r = self.rng
        height = ann["bbox"][3] / 1.1
        cx = ann["bbox"][0] + ann["bbox"][2] / 2
        cy = ann["bbox"][1] + .55 * height
        kps = []
        for j, (px, py) in enumerate(self.pose):
            x, y, v = ann["keypoints"][3 * j:3 * j + 3]
            if v == 0:
                x, y = cx + px * height, cy + py * height
            if r.random() < drop:
                x, y = x + r.gauss(0, height), y + r.gauss(0, height)
            kps += [round(x + r.gauss(0, noise * height), 3), round(y + r.gauss(0, noise * height), 3),
                    round(r.random(), 4)]
        res = {"image_id": ann["image_id"] if iid is None else iid,
               "category_id": ann["category_id"] if cat is None else cat, "keypoints": kps, "score": score}
        self.results.append(res)
        return res

    def false_positive(self, iid, score, cat=1, size=None):
        r = self.rng
        size = size or r.uniform(20, 300)
        cx, cy = r.uniform(0, 640), r.uniform(0, 480)
        kps = []
        for (px, py) in self.pose:
            kps += [round(cx + (px + r.gauss(0, .1)) * size, 3), round(cy + (py + r.gauss(0, .1)) * size, 3), round(r.random(), 4)]
        res = {"image_id": iid, "category_id": cat, "keypoints": kps, "score": score}
        self.results.append(res)
        return res

    def files(self):
        gt = {"info": {"description": "dypose evaluation case"}, "licenses": [], "images": self.images,
              "annotations": self.anns, "categories": self.categories}
        return gt, self.results


# ---------------------------------------------------------------------------------------------
# The cases. Each returns (gt dict, results list).

def mixed_scene(c, iid, persons, rng_noise=(0.002, 0.06), fps=1):
    r = c.rng
    c.image(iid)
    for _ in range(persons):
        a = c.person(iid, r.uniform(50, 590), r.uniform(80, 400), r.uniform(40, 400), visible=r.uniform(.3, 1))
        if r.random() < .9:
            c.detect(a, r.uniform(*rng_noise), round(r.random(), 6))
    for _ in range(fps):
        c.false_positive(iid, round(r.random() * .5, 6))


def case_perfect():
    c = Case(1)
    for iid in range(1, 6):
        c.image(iid)
        for _ in range(3):
            a = c.person(iid, c.rng.uniform(100, 500), c.rng.uniform(100, 380), c.rng.uniform(60, 300))
            c.results.append({"image_id": iid, "category_id": 1, "keypoints": a["keypoints"], "score": 1.0})
    return c.files()


def case_real_sample_gt_fed_back():
    gt = json.load(open(SAMPLE_GT))
    res = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0} for a in gt["annotations"]]
    return gt, res


def case_real_sample_noisy():
    gt = json.load(open(SAMPLE_GT))
    c = Case(2)
    for a in gt["annotations"]:
        for k in range(2):
            c.detect(a, .01 + .05 * k, round(c.rng.random(), 5))
    return gt, c.results


def case_noise_levels():
    c = Case(3)
    for iid in range(1, 31):
        mixed_scene(c, iid, 1 + iid % 4)
    return c.files()


def case_crowd_regions():
    c = Case(4)
    for iid in range(1, 9):
        c.image(iid)
        crowd = c.person(iid, 320, 240, 300, visible=0, iscrowd=1)
        crowd["num_keypoints"] = 0
        for k in range(4):  # several detections inside the crowd box: all may match it
            a = c.person(iid, 200 + 60 * k, 250, 120, visible=.9, iscrowd=0) if k < 2 else None
            if a:
                c.detect(a, .02, round(.9 - .1 * k, 3))
            c.detect(crowd, .05, round(.5 + .05 * k, 3))
        c.false_positive(iid, .3)
    return c.files()


def case_crowd_with_labelled_joints():
    c = Case(5)
    for iid in range(1, 6):
        c.image(iid)
        crowd = c.person(iid, 300, 240, 250, visible=.8, iscrowd=1)
        reg = c.person(iid, 420, 250, 180, visible=.9)
        for k in range(3):
            c.detect(crowd, .01 + .02 * k, round(.95 - .1 * k, 3))
        c.detect(reg, .03, .6)
    return c.files()


def case_num_keypoints_zero():
    c = Case(6)
    for iid in range(1, 8):
        c.image(iid)
        z = c.person(iid, 300, 240, 200, visible=0)
        c.detect(z, .05, .9)  # inside the doubled box: OKS 1 against an ignored GT
        reg = c.person(iid, 150, 240, 150, visible=.9)
        c.detect(reg, .04, .7)
        far = copy.deepcopy(c.results[-1])
        far["keypoints"] = [v + 900 if i % 3 != 2 else v for i, v in enumerate(far["keypoints"])]
        far["score"] = .8
        c.results.append(far)
    return c.files()


def case_num_keypoints_disagrees_with_flags():
    c = Case(7)
    for iid in range(1, 8):
        c.image(iid)
        a = c.person(iid, 200, 240, 200, visible=.9)
        a["num_keypoints"] = 0  # labelled joints but num_keypoints 0: ignored, OKS from the flags
        c.detect(a, .03, .9)
        b = c.person(iid, 450, 240, 150, visible=0)
        b["num_keypoints"] = 3  # no labelled joints but counted: regular, OKS from the doubled box
        c.detect(b, .2, .8)
        c.false_positive(iid, .5)
    return c.files()


def case_doubled_box_distances():
    c = Case(8)
    for iid in range(1, 11):
        c.image(iid)
        g = c.person(iid, 320, 240, 100, visible=0)
        g["num_keypoints"] = 1
        x, y, w, h = g["bbox"]
        # joints scattered around [x-w, x+2w] x [y-h, y+2h], some outside by growing margins
        for k in range(3):
            m = (k * iid) * 3.0
            kps = []
            for j in range(K):
                px = c.rng.choice([x - w - m, x + 2 * w + m, x + w / 2])
                py = c.rng.choice([y - h - m, y + 2 * h + m, y + h / 2])
                kps += [round(px, 3), round(py, 3), 1]
            c.results.append({"image_id": iid, "category_id": 1, "keypoints": kps, "score": round(.9 - .2 * k, 3)})
    return c.files()


def case_more_than_20_detections():
    c = Case(9)
    for iid in range(1, 6):
        c.image(iid)
        people = [c.person(iid, c.rng.uniform(50, 590), c.rng.uniform(80, 400), c.rng.uniform(50, 200)) for _ in range(6)]
        for k in range(30):
            c.false_positive(iid, round(.5 + .01 * k, 4))
        for p in people:  # good detections with low scores: cut away by maxDets = 20
            c.detect(p, .01, round(.1 + .01 * c.rng.random(), 4))
        c.detect(people[0], .01, .99)
    return c.files()


def case_tied_scores_within_image():
    c = Case(10)
    for iid in range(1, 8):
        c.image(iid)
        people = [c.person(iid, 100 + 150 * k, 240, 150) for k in range(3)]
        for k, p in enumerate(people):
            c.detect(p, .02 * (k + 1), .5)
            c.false_positive(iid, .5)
        for _ in range(22):  # ties across the 20-detection cut
            c.false_positive(iid, .25)
        c.detect(people[0], .005, .25)
    return c.files()


def case_tied_scores_across_images():
    c = Case(11)
    for iid in range(1, 21):
        c.image(iid)
        p = c.person(iid, 320, 240, 200)
        if iid % 2:
            c.detect(p, .02, .7)
        else:
            c.false_positive(iid, .7)
        c.detect(p, .1, .4)
    return c.files()


def boundary_person(c, iid, cx, area, **kw):
    return c.person(iid, cx, 240, 100, area=area, **kw)


def case_area_range_boundaries_gt():
    c = Case(12)
    areas = [32 ** 2, 96 ** 2, 1023.9999, 1024.0001, 9215.9999, 9216.0001, 0, 1e10, 500, 20000]
    for iid, area in enumerate(areas, start=1):
        c.image(iid)
        a = boundary_person(c, iid, 320, area)
        c.detect(a, .001, .9)
        b = boundary_person(c, iid, 100, 5000)
        c.detect(b, .05, .6)
    return c.files()


def square_result(iid, x0, y0, side, score, cat=1):
    """A detection whose keypoint box is exactly side x side (area side**2)."""
    kps = []
    for j in range(K):
        kps += [float(x0 + (side if j % 2 else 0)), float(y0 + (side if j % 3 == 0 else 0)), 1.0]
    kps[0], kps[1] = float(x0), float(y0)
    kps[3], kps[4] = float(x0 + side), float(y0 + side)
    return {"image_id": iid, "category_id": cat, "keypoints": kps, "score": score}


def case_area_range_boundaries_detections():
    c = Case(13)
    for iid, side in enumerate([32, 96, 31.999, 32.001, 95.999, 96.001, 10, 200], start=1):
        c.image(iid)
        a = c.person(iid, 320, 240, 130)
        c.detect(a, .02, .8)
        c.results.append(square_result(iid, 10, 10, side, .9))  # unmatched: ignored outside the range
    return c.files()


def case_several_categories():
    cats = [category(1, "person"), category(2, "robot"), category(3, "statue")]
    c = Case(14, cats)
    for iid in range(1, 16):
        c.image(iid)
        for cat in (1, 2, 3):
            for _ in range(c.rng.randint(0, 2)):
                a = c.person(iid, c.rng.uniform(50, 590), c.rng.uniform(80, 400), c.rng.uniform(40, 300), cat=cat)
                c.detect(a, c.rng.uniform(.005, .12), round(c.rng.random(), 5))
            c.false_positive(iid, round(c.rng.random() * .6, 5), cat=cat)
        # a detection of the right person with the wrong category
        if c.anns:
            c.detect(c.anns[-1], .01, .95, cat=1 + (c.anns[-1]["category_id"] % 3))
    return c.files()


def case_category_without_regular_gt():
    cats = [category(1), category(2, "crowd-only"), category(5, "unused")]
    c = Case(15, cats)
    for iid in range(1, 8):
        c.image(iid)
        a = c.person(iid, 200, 240, 180)
        c.detect(a, .03, .8)
        cr = c.person(iid, 420, 240, 180, cat=2, iscrowd=1)
        c.detect(cr, .03, .9)
        c.false_positive(iid, .4, cat=2)
    return c.files()


def case_results_with_unknown_categories():
    c = Case(16)
    for iid in range(1, 8):
        mixed_scene(c, iid, 2)
        for r in list(c.results[-2:]):
            x = copy.deepcopy(r)
            x["category_id"] = 99
            x["score"] = .99
            c.results.append(x)
    return c.files()


def case_gt_category_not_listed():
    c = Case(17)
    for iid in range(1, 8):
        mixed_scene(c, iid, 2)
        a = c.person(iid, 300, 240, 150, cat=7)  # category 7 is not in "categories"
        c.detect(a, .01, .9)
    return c.files()


def case_images_without_gt():
    c = Case(18)
    for iid in range(1, 11):
        if iid % 3 == 0:
            c.image(iid)
            for k in range(3):
                c.false_positive(iid, round(.3 * k + .05, 3))
        else:
            mixed_scene(c, iid, 2)
    return c.files()


def case_images_without_results():
    c = Case(19)
    for iid in range(1, 11):
        c.image(iid)
        for _ in range(2):
            a = c.person(iid, c.rng.uniform(100, 500), 240, c.rng.uniform(60, 300))
            if iid % 3:
                c.detect(a, .03, round(c.rng.random(), 4))
    c.image(50)  # an image with neither
    return c.files()


def case_gt_id_zero():
    c = Case(20)
    for iid in range(1, 6):
        c.image(iid)
        a = c.person(iid, 200, 240, 200, ann_id=0 if iid == 3 else None)
        c.detect(a, .01, .9)
        b = c.person(iid, 450, 240, 150)
        c.detect(b, .02, .7)
    # the GT with id 0 is medium-sized: its match's detection would otherwise count there
    c.anns[4]["area"] = 5000.0
    return c.files()


def case_gt_ignore_field_overwritten():
    c = Case(21)
    for iid in range(1, 8):
        c.image(iid)
        a = c.person(iid, 200, 240, 200, ignore=1)  # iscrowd 0: pycocotools overwrites ignore with 0
        c.detect(a, .02, .9)
        b = c.person(iid, 450, 240, 150, ignore=0, iscrowd=1)
        c.detect(b, .02, .8)
    return c.files()


def case_iscrowd_as_bool():
    c = Case(22)
    for iid in range(1, 8):
        c.image(iid)
        a = c.person(iid, 200, 240, 200)
        a["iscrowd"] = False
        c.detect(a, .02, .9)
        b = c.person(iid, 450, 240, 150)
        b["iscrowd"] = True
        c.detect(b, .02, .8)
    return c.files()


def case_large_ids():
    c = Case(23)
    base = 2 ** 40
    for k in range(6):
        iid = base + 7919 * k
        c.image(iid)
        a = c.person(iid, 300, 240, 200, ann_id=2 ** 33 + k)
        c.detect(a, .02 + .01 * k, round(.5 + .07 * k, 3))
        c.false_positive(iid, .45)
    return c.files()


def case_floats_for_ints_and_ints_for_floats():
    c = Case(24)
    for iid in range(1, 8):
        mixed_scene(c, iid, 2)
    gt, res = c.files()
    for a in gt["annotations"]:
        a["keypoints"] = [round(v) for v in a["keypoints"]]
        a["num_keypoints"] = float(a["num_keypoints"])
        a["area"] = int(a["area"])
        a["iscrowd"] = 0.0
    for r in res:
        r["image_id"] = float(r["image_id"])
        r["category_id"] = 1.0
        r["score"] = int(r["score"] * 4)  # integer scores, many ties
    for im in gt["images"]:
        im["width"] = 640.0
    return gt, res


def case_results_with_bbox():
    c = Case(25)
    for iid in range(1, 8):
        mixed_scene(c, iid, 2)
    gt, res = c.files()
    for k, r in enumerate(res):  # the area comes from the bbox, some far from the keypoints' box
        r["bbox"] = [10, 10, 20 + 15 * k, 30 + 40 * (k % 4)]
    return gt, res


def case_results_with_empty_first_bbox():
    gt, res = case_results_with_bbox()
    res[0]["bbox"] = []
    return gt, res


def case_ignored_gt_after_regular_match():
    c = Case(26)
    for iid in range(1, 8):
        c.image(iid)
        reg = c.person(iid, 300, 240, 200)
        ign = c.person(iid, 302, 240, 200, iscrowd=1)
        ign["keypoints"] = list(reg["keypoints"])
        ign["keypoints"][0] += 3
        c.detect(reg, .01, .9)
        c.detect(reg, .04, .8)  # regular GT taken: may fall to the crowd
        c.detect(reg, .08, .7)
    return c.files()


def case_duplicate_detections():
    c = Case(27)
    for iid in range(1, 8):
        c.image(iid)
        a = c.person(iid, 300, 240, 200)
        r = c.detect(a, .02, .9)
        c.results.append(dict(r, score=.9))
        c.results.append(dict(r, score=.95))
    return c.files()


def case_gt_area_zero_and_tiny():
    c = Case(28)
    for iid in range(1, 6):
        c.image(iid)
        a = c.person(iid, 300, 240, 30, area=0)
        c.results.append({"image_id": iid, "category_id": 1, "keypoints": list(a["keypoints"]), "score": .9})
        c.detect(a, .001, .8)
        b = c.person(iid, 100, 240, 10, area=1e-6)
        c.detect(b, .01, .7)
    return c.files()


def case_all_gt_ignored():
    c = Case(29)
    for iid in range(1, 5):
        c.image(iid)
        a = c.person(iid, 300, 240, 200, iscrowd=1)
        c.detect(a, .02, .9)
        b = c.person(iid, 100, 240, 100, visible=0)
        c.detect(b, .02, .5)
    return c.files()


def case_unsorted_results():
    c = Case(30)
    for iid in range(1, 15):
        mixed_scene(c, iid, 3, fps=2)
    gt, res = c.files()
    c.rng.shuffle(res)
    return gt, res


def one_size_case(seed, height, area_lo, area_hi, per_image=1):
    """Persons of a single area range only: the other ranges have no regular GT (-1)."""
    c = Case(seed)
    for iid in range(1, 10):
        c.image(iid)
        for k in range(per_image):
            cx = 150 + 250 * k if per_image > 1 else 320
            a = c.person(iid, cx, 240, height, area=c.rng.uniform(area_lo, area_hi))
            c.detect(a, c.rng.uniform(.01, .1), round(c.rng.random(), 4))
    return c.files()


def case_only_medium_persons():
    return one_size_case(31, 90, 1100, 9000, per_image=2)


def case_only_large_persons():
    return one_size_case(32, 300, 10000, 80000)


def case_small_persons_only():
    return one_size_case(33, 25, 50, 1000)


def case_negative_and_zero_scores():
    c = Case(34)
    for iid in range(1, 8):
        c.image(iid)
        a = c.person(iid, 300, 240, 200)
        c.detect(a, .02, -0.0 if iid % 2 else 0.0)
        c.false_positive(iid, -0.5)
        c.false_positive(iid, 0.0)
        b = c.person(iid, 100, 240, 100)
        c.detect(b, .03, -1e-3)
    return c.files()


def case_gt_for_images_not_listed():
    c = Case(35)
    for iid in range(1, 6):
        mixed_scene(c, iid, 2)
    c.person(999, 300, 240, 200)  # image 999 is not in "images": not evaluated
    return c.files()


def case_empty_gt_annotations():
    c = Case(36)
    for iid in range(1, 4):
        c.image(iid)
        c.false_positive(iid, .5)
    return c.files()


def case_single_detection():
    c = Case(37)
    c.image(42)
    a = c.person(42, 300, 240, 200)
    c.detect(a, .05, .5)
    return c.files()


def case_crowd_matched_many_times():
    c = Case(38)
    for iid in range(1, 6):
        c.image(iid)
        cr = c.person(iid, 300, 240, 250, visible=.9, iscrowd=1)
        for k in range(8):
            c.detect(cr, .005 * (k + 1), round(.9 - .05 * k, 3))
        reg = c.person(iid, 500, 240, 100)
        c.detect(reg, .03, .2)
    return c.files()


def random_case(seed, images):
    def build():
        c = Case(seed)
        r = c.rng
        for iid in range(1, images + 1):
            c.image(iid * 13)
            for _ in range(r.randint(0, 4)):
                a = c.person(iid * 13, r.uniform(0, 640), r.uniform(0, 480), r.uniform(15, 450),
                             visible=r.choice([0, .3, .7, 1]), iscrowd=1 if r.random() < .05 else 0)
                for _ in range(r.randint(0, 2)):
                    c.detect(a, r.uniform(.002, .08), round(r.random(), r.choice([1, 2, 6])), drop=r.uniform(0, .3))
            for _ in range(r.randint(0, 25) if r.random() < .2 else r.randint(0, 3)):
                c.false_positive(iid * 13, round(r.random() * .6, r.choice([1, 3])))
        return c.files()
    return build


def spec_case(spec, seed, images, crowds=.05, ties=False, noise=(.002, .08)):
    """A random scene of another keypoint set; the builder returns (gt, results, spec)."""
    def build():
        c = Case(seed, [spec_category(spec)], pose=spec_pose(spec, seed + 1))
        r = c.rng
        for iid in range(1, images + 1):
            c.image(iid)
            for _ in range(r.randint(0, 4)):
                a = c.person(iid, r.uniform(0, 640), r.uniform(0, 480), r.uniform(15, 450),
                             visible=r.choice([0, .3, .7, 1]), iscrowd=1 if r.random() < crowds else 0)
                for _ in range(r.randint(0, 2)):
                    score = .5 if ties else round(r.random(), r.choice([1, 2, 6]))
                    c.detect(a, r.uniform(*noise), score, drop=r.uniform(0, .3))
            for _ in range(r.randint(0, 25) if r.random() < .2 else r.randint(0, 3)):
                c.false_positive(iid, round(r.random() * .6, r.choice([1, 3])))
        gt, res = c.files()
        return gt, res, spec
    return build


def fuzz_case(seed):
    """A random case that mixes every quirk: categories, crowds, num_keypoints 0 and mismatched,
    GT id 0, area boundaries, score ties, >20 detections, bbox-carrying results, big ids."""
    r = random.Random(seed)
    ncat = r.choice([1, 1, 2, 3])
    cats = [category(k + 1, "c%d" % k) for k in range(ncat)]
    c = Case(seed, cats)
    big = r.choice([0, 2 ** 35])
    decimals = r.choice([1, 2, 6])
    for n in range(r.randint(1, 40)):
        iid = big + n * r.randint(1, 9) + n
        if any(im["id"] == iid for im in c.images):
            continue
        c.image(iid)
        for _ in range(r.randint(0, 5)):
            area = r.choice([None, None, None, 1024, 9216, r.uniform(0, 2000), r.uniform(5000, 12000)])
            a = c.person(iid, r.uniform(0, 640), r.uniform(0, 480), r.uniform(10, 450), visible=r.choice([0, .2, .6, 1]),
                         cat=r.randint(1, ncat + (1 if r.random() < .05 else 0)), iscrowd=int(r.random() < .1), area=area,
                         ann_id=0 if r.random() < .02 else None)
            if r.random() < .1:
                a["num_keypoints"] = r.choice([0, 3])
            for _ in range(r.randint(0, 3)):
                c.detect(a, r.uniform(.001, .1), round(r.random(), decimals), drop=r.uniform(0, .3),
                         cat=r.randint(1, ncat + 1) if r.random() < .1 else None)
        for _ in range(r.randint(0, 30) if r.random() < .2 else r.randint(0, 3)):
            c.false_positive(iid, round(r.random() * .7, decimals), cat=r.randint(1, ncat))
        if r.random() < .1:
            c.results.append(square_result(iid, 5, 5, r.choice([32, 96, 40]), round(r.random(), decimals)))
    used = {a["id"] for a in c.anns}
    if len(used) < len(c.anns):  # at most one GT with id 0
        seen = set()
        for a in c.anns:
            if a["id"] in seen:
                a["id"] = max(used) + 1 + len(seen)
            seen.add(a["id"])
    gt, res = c.files()
    r.shuffle(res)
    if res and r.random() < .15:
        for k, x in enumerate(res):
            x["bbox"] = [1, 2, 10 + 7 * k % 90, 20 + 3 * k % 130]
    return gt, res


def fuzz(count, seed, binary):
    import tempfile
    from crosscheck import compare
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        sets = [load_spec("crowdpose14"), load_spec("hand21"), TIPS5]
        for k in range(count):
            # One case in four is of another keypoint set, scored with its sigmas.
            spec = sets[(seed + k) // 4 % 3] if (seed + k) % 4 == 3 else None
            if spec:
                gt, res, _ = spec_case(spec, seed + k, 1 + (seed + k) % 40, crowds=.1)()
            else:
                gt, res = fuzz_case(seed + k)
            if not res:
                continue  # pycocotools cannot load an empty results list
            g, p, sp = os.path.join(d, "gt.json"), os.path.join(d, "res.json"), os.path.join(d, "spec.json")
            json.dump(gt, open(g, "w"))
            json.dump(res, open(p, "w"))
            if spec:
                json.dump(spec, open(sp, "w"))
            if not compare(g, p, binary, 1e-9, quiet=True, spec_path=sp if spec else None):
                failed += 1
                keep = keep_failure("fuzz-failure-%d" % (seed + k), [g, p] + ([sp] if spec else []))
                print("case seed %d differs; kept in %s" % (seed + k, keep))
    print("fuzz: %d cases, %d differ" % (count, failed))
    return 1 if failed else 0


CASES = {
    "perfect": case_perfect,
    "real_sample_gt_fed_back": case_real_sample_gt_fed_back,
    "real_sample_noisy": case_real_sample_noisy,
    "noise_levels": case_noise_levels,
    "crowd_regions": case_crowd_regions,
    "crowd_with_labelled_joints": case_crowd_with_labelled_joints,
    "crowd_matched_many_times": case_crowd_matched_many_times,
    "num_keypoints_zero": case_num_keypoints_zero,
    "num_keypoints_disagrees_with_flags": case_num_keypoints_disagrees_with_flags,
    "doubled_box_distances": case_doubled_box_distances,
    "more_than_20_detections": case_more_than_20_detections,
    "tied_scores_within_image": case_tied_scores_within_image,
    "tied_scores_across_images": case_tied_scores_across_images,
    "area_range_boundaries_gt": case_area_range_boundaries_gt,
    "area_range_boundaries_detections": case_area_range_boundaries_detections,
    "several_categories": case_several_categories,
    "category_without_regular_gt": case_category_without_regular_gt,
    "results_with_unknown_categories": case_results_with_unknown_categories,
    "gt_category_not_listed": case_gt_category_not_listed,
    "images_without_gt": case_images_without_gt,
    "images_without_results": case_images_without_results,
    "gt_id_zero": case_gt_id_zero,
    "gt_ignore_field_overwritten": case_gt_ignore_field_overwritten,
    "iscrowd_as_bool": case_iscrowd_as_bool,
    "large_ids": case_large_ids,
    "floats_for_ints_and_ints_for_floats": case_floats_for_ints_and_ints_for_floats,
    "results_with_bbox": case_results_with_bbox,
    "results_with_empty_first_bbox": case_results_with_empty_first_bbox,
    "ignored_gt_after_regular_match": case_ignored_gt_after_regular_match,
    "duplicate_detections": case_duplicate_detections,
    "gt_area_zero_and_tiny": case_gt_area_zero_and_tiny,
    "all_gt_ignored": case_all_gt_ignored,
    "unsorted_results": case_unsorted_results,
    "only_medium_persons": case_only_medium_persons,
    "only_large_persons": case_only_large_persons,
    "small_persons_only": case_small_persons_only,
    "negative_and_zero_scores": case_negative_and_zero_scores,
    "gt_for_images_not_listed": case_gt_for_images_not_listed,
    "empty_gt_annotations": case_empty_gt_annotations,
    "single_detection": case_single_detection,
    "random_a": random_case(101, 60),
    "random_b": random_case(102, 150),
    "random_c": random_case(103, 300),
    "other_set_crowdpose14": spec_case(load_spec("crowdpose14"), 201, 120),
    "other_set_hand21": spec_case(load_spec("hand21"), 202, 80, noise=(.0005, .02)),
    "other_set_tips5_crowds_and_ties": spec_case(TIPS5, 203, 60, crowds=.2, ties=True),
}


def stats_of(case_dir, gt_path, res_path):
    spec_path = os.path.join(case_dir, "spec.json")
    sigmas = json.load(open(spec_path))["sigmas"] if os.path.exists(spec_path) else None
    return pycocotools_stats(gt_path, res_path, sigmas=sigmas)


def main():
    args = parse_args(__doc__)
    if args.fuzz:
        return fuzz(args.fuzz, args.seed, args.dypose)
    return write_or_check(CASES, OUT, stats_of, args.check)


if __name__ == "__main__":
    sys.exit(main())
