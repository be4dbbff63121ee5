#!/usr/bin/env python3
"""Builds tests/data/public_sets/: one small fixture per public COCO-format person keypoint data
set, each in the layout that data set publishes (field names, types, missing fields, category
names and skeletons, image folders), with the stats the data set's reference evaluator gives.

The layouts follow the data sets' own descriptions and the records their tools read and write:
- coco_wholebody: COCO's fields plus foot_kpts, face_kpts, lefthand_kpts, righthand_kpts, the
  three part boxes and *_valid flags; the category names COCO's 17 joints.
- crowdpose: no `area`; images carry `crowdIndex`; the category names the head `head` and carries
  COCO's skeleton (joints up to 17 for 14); `num_keypoints` counts the first 12 joints only.
- ochuman: COCO's fields, an RLE `segmentation`, `area` the box area, `iscrowd` 0.
- posetrack18: mmpose's files: `images/val/<video>/000000.jpg` (frames of the same name in every
  video), no `area`, `iscrowd` as a JSON bool, `bbox_head`, `track_id`, `scores`, ignore
  regions, `head_bottom`/`head_top` in place of the eyes.
- humanart: `keypoints` (17) and `keypoints_21`, `num_keypoints_21`, `self_contact`, a 21-name
  category over 17-joint arrays, images under `HumanArt/images/<scenario>/<kind>/`.
- aic: AI Challenger as mmpose converts it: no `area`, no `iscrowd`, title-case names with
  spaces ("Right Shoulder", "Head top").
- exlpose: no `area`, `crowdIndex` 0, CrowdPose's names with a 0-based skeleton, ids from 0,
  a `num_keypoints` that disagrees with the flags, PNG images.

fixture.json lists, for each scored variant, the metric, the keypoint field, the training config,
where the drawn limbs come from ("category": its 1-based skeleton; else the shipped spec whose
limbs replace a skeleton that does not fit the joints) and the expected stats:
- files with `area`: pycocotools' COCOeval(iouType="keypoints");
- files without: xtcocotools' COCOeval(use_area=False), as mmpose's configs score them;
- CrowdPose's benchmark: xtcocotools' iouType="keypoints_crowd", use_area=False.
Sigmas are those dypose finds for the file with no flag (COCO's as pycocotools builds them;
configs/keypoints/*.json otherwise, CrowdPose's computed as np.array([.79, …]) / 10.0).

    pip install numpy pillow pycocotools xtcocotools
    python3 tools/make_dataset_fixtures.py           # (re)write every fixture
    python3 tools/make_dataset_fixtures.py --check   # recompute the stats, compare with fixture.json
    python3 tools/make_dataset_fixtures.py --fuzz 200 # random files without area: xtcocotools vs
                                                      # target/release/dypose, both metrics
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pycoco_eval import pycocotools_stats, xtcocotools_stats  # noqa: E402


def xtcocotools_box_stats(gt_path, res_path):
    """xtcocotools' COCOeval(iouType="bbox", use_area=False): the 12 box numbers."""
    import contextlib
    import io
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        ev = COCOeval(gt, gt.loadRes(res_path), "bbox", use_area=False)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]

ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "data", "public_sets")

COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
              "left_knee", "right_knee", "left_ankle", "right_ankle"]
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                 [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# A standing person, height 1, centred at the origin, y down (COCO order).
COCO_POSE = [(0, -.42), (.03, -.45), (-.03, -.45), (.06, -.43), (-.06, -.43), (.12, -.3), (-.12, -.3),
             (.16, -.12), (-.16, -.12), (.18, .05), (-.18, .05), (.08, .05), (-.08, .05), (.09, .28),
             (-.09, .28), (.1, .5), (-.1, .5)]
CROWDPOSE_RELEASE = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"]
# CrowdPose order: COCO's shoulders to ankles, then head top and neck.
CROWDPOSE_POSE = COCO_POSE[5:] + [(0, -.5), (0, -.34)]
AIC_NAMES = ["Right Shoulder", "Right Elbow", "Right Wrist", "Left Shoulder", "Left Elbow", "Left Wrist",
             "Right Hip", "Right Knee", "Right Ankle", "Left Hip", "Left Knee", "Left Ankle", "Head top", "Neck"]
AIC_SKELETON = [[3, 2], [2, 1], [1, 14], [14, 4], [4, 5], [5, 6], [9, 8], [8, 7], [7, 10], [10, 11], [11, 12],
                [13, 14], [1, 7], [4, 10]]
AIC_POSE = [COCO_POSE[i] for i in (6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15)] + [(0, -.5), (0, -.34)]
HUMANART_NAMES = COCO_NAMES + ["left_finger", "right_finger", "left_toe", "right_toe"]
HUMANART_SKELETON = [[20, 16], [16, 14], [14, 12], [21, 17], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13],
                     [6, 7], [6, 8], [7, 9], [10, 18], [8, 10], [11, 19], [9, 11], [2, 3], [1, 2], [1, 3],
                     [2, 4], [3, 5], [4, 6], [5, 7]]
HUMANART_POSE = COCO_POSE + [(.2, .12), (-.2, .12), (.12, .55), (-.12, .55)]
# The ExLPose release's 0-based skeleton over CrowdPose's joints.
EXLPOSE_SKELETON = [[12, 13], [13, 0], [13, 1], [0, 2], [2, 4], [1, 3], [3, 5], [13, 7], [13, 6], [7, 9], [9, 11],
                    [6, 8], [8, 10]]


# The evaluators' sigmas, as their sources write them (not read from dypose's specs, so that a
# wrong shipped spec shows as a mismatch): mmpose's configs/_base_/datasets/aic.py and
# humanart21.py.
AIC_SIGMAS = [0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642, 0.03686941,
              0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173]
HUMANART21_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                     0.087, 0.087, 0.089, 0.089, 0.089, 0.089, 0.089, 0.089]


def crowdpose_sigmas():
    import numpy as np
    return [float(s) for s in np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10.0]


def category(names, skeleton):
    return {"supercategory": "person", "id": 1, "name": "person", "keypoints": names, "skeleton": skeleton}


class Scene:
    """Persons placed on images, with labelled joints from a template pose."""

    def __init__(self, seed, pose, width=320, height=240):
        self.r = random.Random(seed)
        self.pose = pose
        self.width, self.height = width, height

    def person(self, hidden=0.2, visible_only=False):
        """(keypoints [x, y, v] × K, bbox) of one person inside the image."""
        r = self.r
        h = r.uniform(60, 200)
        cx = r.uniform(0.25 * self.width, 0.75 * self.width)
        cy = r.uniform(h / 2 + 2, self.height - h / 2 - 2)
        kps = []
        for (px, py) in self.pose:
            x = round(cx + h * px + r.gauss(0, 2), 2)
            y = round(cy + h * py + r.gauss(0, 2), 2)
            if r.random() < hidden:
                kps += [0, 0, 0]
            else:
                kps += [x, y, 2 if visible_only or r.random() < 0.8 else 1]
        xs = [kps[3 * j] for j in range(len(self.pose)) if kps[3 * j + 2] > 0]
        ys = [kps[3 * j + 1] for j in range(len(self.pose)) if kps[3 * j + 2] > 0]
        if not xs:
            xs, ys = [cx - 10, cx + 10], [cy - 20, cy + 20]
        x0, y0 = max(0.0, min(xs) - 8), max(0.0, min(ys) - 8)
        x1, y1 = min(self.width - 1.0, max(xs) + 8), min(self.height - 1.0, max(ys) + 8)
        return kps, [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]

    def results(self, gts, k, image_of, zero_scored=0, noise_scale=1.0):
        """Noisy detections of the GT persons (some missed), a few false positives, and
        `zero_scored` detections whose joints all score 0 (xtcocotools drops those)."""
        r = self.r
        out = []
        for a in gts:
            if a.get("iscrowd") or r.random() < 0.15:
                continue
            noise = r.choice([1.0, 3.0, 6.0, 12.0]) * noise_scale
            gk = a["kps"]
            kps = []
            for j in range(k):
                x, y, v = gk[3 * j:3 * j + 3]
                if v == 0:
                    x, y = a["bbox"][0] + r.uniform(0, a["bbox"][2]), a["bbox"][1] + r.uniform(0, a["bbox"][3])
                kps += [round(x + r.gauss(0, noise), 2), round(y + r.gauss(0, noise), 2), round(r.uniform(0.05, 1), 3)]
            out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kps, "score": round(r.uniform(0.2, 1), 4)})
        for image_id in image_of[:3]:
            kps = []
            for _ in range(k):
                kps += [round(r.uniform(0, self.width), 2), round(r.uniform(0, self.height), 2), round(r.uniform(0.05, 0.5), 3)]
            out.append({"image_id": image_id, "category_id": 1, "keypoints": kps, "score": round(r.uniform(0.05, 0.6), 4)})
        for i in range(zero_scored):
            a = gts[i]
            kps = []
            for j in range(k):
                kps += [a["kps"][3 * j], a["kps"][3 * j + 1], 0]
            out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kps, "score": 0.99})
        return out

    def boxes(self, anns, image_ids):
        """Detector boxes: each GT box moved and scaled a little (some missed), and a few others."""
        r = self.r
        out = []
        for a in anns:
            if r.random() < 0.1:
                continue
            x, y, w, h = a["bbox"]
            s = r.uniform(0.8, 1.2)
            out.append({"image_id": a["image_id"], "category_id": 1, "score": round(r.uniform(0.3, 1), 4),
                        "bbox": [round(x + r.gauss(0, 4), 2), round(y + r.gauss(0, 4), 2), round(w * s, 2), round(h * s, 2)]})
        for image_id in image_ids:
            out.append({"image_id": image_id, "category_id": 1, "score": round(r.uniform(0.05, 0.5), 4),
                        "bbox": [round(r.uniform(0, 200), 2), round(r.uniform(0, 150), 2), round(r.uniform(5, 100), 2),
                                 round(r.uniform(5, 90), 2)]})
        return out


def labelled(kps, joints=None):
    n = len(kps) // 3 if joints is None else joints
    return sum(1 for j in range(n) if kps[3 * j + 2] > 0)


def persons_on(scene, image_ids, per_image, hidden=0.2, visible_only=False):
    """[{image_id, kps, bbox}] with `per_image` persons on each image."""
    out = []
    for image_id in image_ids:
        for _ in range(per_image):
            kps, bbox = scene.person(hidden, visible_only)
            out.append({"image_id": image_id, "kps": kps, "bbox": bbox})
    return out


# Each builder returns a fixture: files to write (relative path → JSON value), images
# (relative path → (width, height, seed)), and how to score it.

def coco_wholebody():
    scene = Scene(11, COCO_POSE)
    ids = [425226, 785, 872]
    images = [{"license": 1, "file_name": "%012d.jpg" % i, "coco_url": "http://images.cocodataset.org/val2017/%012d.jpg" % i,
               "height": 240, "width": 320, "date_captured": "2013-11-14 17:02:52", "flickr_url": "", "id": i} for i in ids]
    people = persons_on(scene, ids, 3)
    anns = []
    for n, p in enumerate(people):
        def part(k):
            return [round(v, 2) for j in range(k) for v in (scene.r.uniform(0, 320), scene.r.uniform(0, 240), 2.0)]
        bx = p["bbox"]
        anns.append({"segmentation": [[bx[0], bx[1], bx[0] + bx[2], bx[1], bx[0] + bx[2], bx[1] + bx[3]]],
                     "num_keypoints": labelled(p["kps"]), "area": round(bx[2] * bx[3] * 0.6, 3), "iscrowd": 0,
                     "keypoints": p["kps"], "image_id": p["image_id"], "bbox": bx, "category_id": 1, "id": 200000 + n,
                     "face_box": [bx[0], bx[1], 20.0, 20.0], "lefthand_box": [0.0, 0.0, 0.0, 0.0],
                     "righthand_box": [bx[0], bx[1] + 40, 12.0, 12.0], "lefthand_kpts": [0.0] * 63,
                     "righthand_kpts": part(21), "face_kpts": part(68), "face_valid": True, "lefthand_valid": False,
                     "righthand_valid": True, "foot_kpts": part(6), "foot_valid": True})
    # A crowd region, as COCO's files have.
    anns.append({"segmentation": {"counts": [0, 100, 500], "size": [240, 320]}, "num_keypoints": 0, "area": 900.0,
                 "iscrowd": 1, "keypoints": [0] * 51, "image_id": ids[0], "bbox": [5.0, 5.0, 30.0, 30.0],
                 "category_id": 1, "id": 900100, "face_box": [0.0, 0.0, 0.0, 0.0], "lefthand_box": [0.0, 0.0, 0.0, 0.0],
                 "righthand_box": [0.0, 0.0, 0.0, 0.0], "lefthand_kpts": [0.0] * 63, "righthand_kpts": [0.0] * 63,
                 "face_kpts": [0.0] * 204, "face_valid": False, "lefthand_valid": False, "righthand_valid": False,
                 "foot_kpts": [0.0] * 18, "foot_valid": False})
    gt = {"info": {"description": "COCO-WholeBody"}, "licenses": [], "images": images, "annotations": anns,
          "categories": [category(COCO_NAMES, COCO_SKELETON)]}
    results = scene.results([dict(p, image_id=p["image_id"]) for p in people], 17, ids)
    return {"gt": "annotations/coco_wholebody_val_v1.0.json", "image_root": "val2017", "files": {},
            "gt_value": gt, "results": results, "images": {im["file_name"]: (320, 240, im["id"]) for im in images},
            "scored": [{"metric": "coco", "reference": "pycocotools", "sigmas": None, "limbs_from": "category"}]}


def crowdpose():
    scene = Scene(12, CROWDPOSE_POSE)
    ids = [100000, 100001, 100002, 100003]
    crowd = [0.05, 0.33, 0.61, 0.92]
    images = [{"file_name": "%d.jpg" % i, "id": i, "height": 240, "width": 320, "crowdIndex": c} for i, c in zip(ids, crowd)]
    people = persons_on(scene, ids, 3)
    anns = []
    for n, p in enumerate(people):
        anns.append({"num_keypoints": labelled(p["kps"], 12), "iscrowd": 0, "keypoints": p["kps"],
                     "image_id": p["image_id"], "bbox": p["bbox"], "category_id": 1, "id": 123800 + n})
    # A person with only head and neck labelled: num_keypoints 0 (ignored by the benchmark).
    kps = [0] * 36 + [160.0, 40.0, 2, 160.0, 60.0, 2]
    anns.append({"num_keypoints": 0, "iscrowd": 0, "keypoints": kps, "image_id": ids[1], "bbox": [140.0, 30.0, 40.0, 50.0],
                 "category_id": 1, "id": 123999})
    gt = {"categories": [category(CROWDPOSE_RELEASE, COCO_SKELETON)], "images": images, "annotations": anns}
    results = scene.results(people, 14, ids, zero_scored=1)
    boxes = scene.boxes(anns, ids)
    sig = crowdpose_sigmas()
    return {"gt": "json/crowdpose_test.json", "image_root": "images", "gt_value": gt, "results": results,
            "boxes": boxes,
            "images": {im["file_name"]: (320, 240, im["id"]) for im in images},
            "scored": [{"metric": "crowdpose", "reference": "xtcocotools keypoints_crowd", "sigmas": sig,
                        "limbs_from": "crowdpose14.json"},
                       {"metric": "coco", "reference": "xtcocotools", "sigmas": sig, "limbs_from": "crowdpose14.json"}]}


def ochuman():
    import numpy as np
    from pycocotools import mask as mask_utils
    scene = Scene(13, COCO_POSE)
    ids = [1, 2, 3]
    names = ["000817.jpg", "003799.jpg", "003896.jpg"]
    images = [{"file_name": f, "width": 320, "height": 240, "id": i} for i, f in zip(ids, names)]
    people = persons_on(scene, ids, 3)
    anns = []
    for n, p in enumerate(people):
        x, y, w, h = [int(round(v)) for v in p["bbox"]]
        m = np.zeros((240, 320), dtype=np.uint8, order="F")
        m[y:y + h, x:x + w] = 1
        rle = mask_utils.encode(m)
        rle["counts"] = rle["counts"].decode("ascii")
        anns.append({"area": w * h, "image_id": p["image_id"], "iscrowd": 0, "category_id": 1, "bbox": [x, y, w, h],
                     "segmentation": rle, "num_keypoints": labelled(p["kps"]), "id": n + 1, "keypoints": p["kps"]})
    gt = {"categories": [category(COCO_NAMES, COCO_SKELETON)], "images": images, "annotations": anns,
          "info": {"description": "OCHuman"}}
    results = scene.results([dict(p, bbox=a["bbox"]) for p, a in zip(people, anns)], 17, ids)
    return {"gt": "ochuman_coco_format_val_range_0.00_1.00.json", "image_root": "images", "gt_value": gt,
            "results": results, "images": {im["file_name"]: (320, 240, im["id"]) for im in images},
            "scored": [{"metric": "coco", "reference": "pycocotools", "sigmas": None, "limbs_from": "category"}]}


def posetrack18():
    scene = Scene(14, COCO_POSE)
    videos = [("000342", "mpii_test", 1), ("000522", "mpii_test", 1)]
    images, people = [], []
    for vid, kind, t in videos:
        for frame in range(2):
            image_id = t * 10000000000 + int(vid) * 10000 + frame
            images.append({"has_no_densepose": True, "is_labeled": True,
                           "file_name": "images/val/%s_%s/%06d.jpg" % (vid, kind, frame), "nframes": 2,
                           "frame_id": image_id, "vid_id": vid, "ignore_regions_y": [[230, 239, 239, 230]],
                           "ignore_regions_x": [[0, 0, 20, 20]], "id": image_id, "width": 320, "height": 240,
                           "mask_file": "mask/val/%s_%s/%06d.jpg" % (vid, kind, frame)})
    for im in images:
        # PoseTrack labels visibility 1 only, never the ears.
        for track, p in enumerate(persons_on(scene, [im["id"]], 2, hidden=0.1)):
            p["kps"] = [v if j % 3 != 2 else (1 if v > 0 else 0) for j, v in enumerate(p["kps"])]
            p["kps"][9:15] = [0, 0, 0, 0, 0, 0]
            p["track_id"] = track
            people.append(p)
    anns = []
    for n, p in enumerate(people):
        bx = p["bbox"]
        anns.append({"bbox_head": [bx[0], bx[1], 20, 20], "keypoints": p["kps"], "track_id": p["track_id"],
                     "image_id": p["image_id"], "bbox": bx, "scores": [], "category_id": 1,
                     "id": p["image_id"] * 100 + n % 2, "iscrowd": False, "num_keypoints": labelled(p["kps"])})
    names = list(COCO_NAMES)
    names[1:3] = ["head_bottom", "head_top"]
    gt = {"categories": [category(names, COCO_SKELETON)], "images": images, "annotations": anns}
    results = scene.results(people, 17, [im["id"] for im in images], zero_scored=1)
    return {"gt": "annotations/posetrack18_val.json", "image_root": ".", "gt_value": gt, "results": results,
            "images": {im["file_name"]: (320, 240, im["id"] % 97) for im in images},
            "scored": [{"metric": "coco", "reference": "xtcocotools", "sigmas": None, "limbs_from": "category"}]}


def humanart():
    scene = Scene(15, HUMANART_POSE)
    files = [("2D_virtual_human", "digital_art", 1648), ("3D_virtual_human", "garage_kits", 1648),
             ("real_human", "acrobatics", 590)]
    images, people = [], []
    for scenario, kind, number in files:
        image_id = {"2D_virtual_human": 2, "3D_virtual_human": 3, "real_human": 1}[scenario] * 10 ** 12 + number
        images.append({"file_name": "HumanArt/images/%s/%s/%012d.jpg" % (scenario, kind, number), "height": 240,
                       "width": 320, "id": image_id, "page_url": "https://example.org/%d" % number,
                       "image_url": "https://example.org/%d.jpg" % number, "picture_name": "picture %d" % number,
                       "author": "someone", "description": "%s, a person" % kind, "category": kind.replace("_", " ")})
        people += persons_on(scene, [image_id], 2)
    anns = []
    for n, p in enumerate(people):
        k21 = p["kps"]
        k17 = k21[:51]
        bx = p["bbox"]
        anns.append({"keypoints": k17, "keypoints_21": k21, "self_contact": [], "num_keypoints": labelled(k17),
                     "num_keypoints_21": labelled(k21), "iscrowd": 0, "image_id": p["image_id"],
                     "area": round(bx[2] * bx[3], 6), "bbox": bx, "category_id": 1, "id": p["image_id"] * 10 + n,
                     "annotator": 67037})
    gt = {"info": {"description": "Human-Art"}, "images": images, "annotations": anns,
          "categories": [category(HUMANART_NAMES, HUMANART_SKELETON)]}
    res21 = scene.results(people, 21, [im["id"] for im in images])
    res17 = [dict(r, keypoints=r["keypoints"][:51]) for r in res21]
    return {"gt": "HumanArt/annotations/validation_humanart.json", "image_root": ".", "gt_value": gt,
            "results": res17, "results_21": res21,
            "images": {im["file_name"]: (320, 240, im["id"] % 89) for im in images},
            "scored": [{"metric": "coco", "reference": "pycocotools", "sigmas": None, "limbs_from": "coco17.json"},
                       {"metric": "coco", "reference": "pycocotools", "keypoint_field": "keypoints_21",
                        "results": "results_21.json", "sigmas": HUMANART21_SIGMAS, "limbs_from": "category"}]}


def aic():
    scene = Scene(16, AIC_POSE)
    names = ["054d9ce9201beffc76e5ff2169d2af2f027002ca.jpg", "fa436c914fe4a8ec1ec5474af4d3820b84d17561.jpg",
             "ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg"]
    images = [{"url": "http://www.example.org/%d.jpg" % i, "file_name": f, "height": 240, "width": 320, "id": i}
              for i, f in enumerate(names, 1)]
    people = persons_on(scene, [im["id"] for im in images], 3)
    anns = []
    for n, p in enumerate(people):
        kps = [int(round(v)) for v in p["kps"]]
        p["kps"] = kps
        anns.append({"bbox": [int(round(v)) for v in p["bbox"]], "keypoints": kps, "num_keypoints": labelled(kps),
                     "image_id": p["image_id"], "category_id": 1, "id": n + 4})
    gt = {"info": {"description": "AI Challenger"}, "licenses": [], "categories": [category(AIC_NAMES, AIC_SKELETON)],
          "images": images, "annotations": anns}
    results = scene.results(people, 14, [im["id"] for im in images], zero_scored=1, noise_scale=0.2)
    return {"gt": "annotations/aic_val.json", "image_root": "ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911",
            "gt_value": gt, "results": results, "images": {im["file_name"]: (320, 240, im["id"]) for im in images},
            "scored": [{"metric": "coco", "reference": "xtcocotools", "sigmas": AIC_SIGMAS,
                        "limbs_from": "category"}]}


def exlpose():
    scene = Scene(17, CROWDPOSE_POSE)
    names = ["imgs_0212_hwangridan_vid000020_exp400_dark_000052__gain_3.40_exposure_1250.png",
             "imgs_0212_hwangridan_vid000020_exp1200_dark_000052__gain_3.40_exposure_417.png"]
    images = [{"file_name": f, "id": i, "height": 240, "width": 320, "crowdIndex": 0} for i, f in enumerate(names)]
    people = persons_on(scene, [im["id"] for im in images], 3)
    anns = []
    for n, p in enumerate(people):
        anns.append({"num_keypoints": labelled(p["kps"]), "iscrowd": 0, "keypoints": p["kps"], "image_id": p["image_id"],
                     "bbox": p["bbox"], "category_id": 1, "id": n})
    anns[1]["num_keypoints"] = 15  # the release has counts that disagree with the flags
    gt = {"info": {"description": "ExLPose"}, "categories": [category(CROWDPOSE_RELEASE, EXLPOSE_SKELETON)],
          "images": images, "annotations": anns}
    results = scene.results(people, 14, [im["id"] for im in images], zero_scored=1)
    return {"gt": "Annotations/ExLPose/ExLPose_test_LL-Normal.json", "image_root": "ExLPose/dark", "gt_value": gt,
            "results": results, "images": {im["file_name"]: (320, 240, im["id"] + 7) for im in images},
            "scored": [{"metric": "coco", "reference": "xtcocotools", "sigmas": crowdpose_sigmas(),
                        "limbs_from": "crowdpose14.json"}]}


FIXTURES = {"coco_wholebody": coco_wholebody, "crowdpose": crowdpose, "ochuman": ochuman, "posetrack18": posetrack18,
            "humanart": humanart, "aic": aic, "exlpose": exlpose}


def write_image(path, width, height, seed):
    """A smooth colour field with a little texture (JPEG or PNG by extension)."""
    from PIL import Image
    r = random.Random(seed)
    a, b, c = r.randint(40, 200), r.randint(40, 200), r.randint(40, 200)
    img = Image.new("RGB", (width, height))
    px = img.load()
    for y in range(height):
        for x in range(width):
            px[x, y] = ((a + x // 3) % 256, (b + y // 2) % 256, (c + (x + y) // 5) % 256)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, quality=80) if path.endswith(".jpg") else img.save(path)


def field_view(gt, field):
    """The GT of another keypoint array, as pycocotools needs it: that array as `keypoints`, and
    `num_keypoints` counted from its flags (the file's own `num_keypoints` counts the 17)."""
    view = json.loads(json.dumps(gt))
    for a in view["annotations"]:
        a["keypoints"] = a[field]
        a["num_keypoints"] = labelled(a[field])
    return view


def stats_of(d, fixture, scored):
    gt_path = os.path.join(d, fixture["gt"])
    res_path = os.path.join(d, scored.get("results", "results.json"))
    with tempfile.TemporaryDirectory() as tmp:
        if scored.get("keypoint_field"):
            view = os.path.join(tmp, "gt.json")
            json.dump(field_view(json.load(open(gt_path)), scored["keypoint_field"]), open(view, "w"))
            gt_path = view
        ref = scored["reference"]
        if ref == "pycocotools":
            return pycocotools_stats(gt_path, res_path, sigmas=scored["sigmas"])
        sigmas = scored["sigmas"] or [s / 10.0 for s in [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62,
                                                          1.07, 1.07, .87, .87, .89, .89]]
        iou_type = "keypoints_crowd" if ref == "xtcocotools keypoints_crowd" else "keypoints"
        return xtcocotools_stats(gt_path, res_path, sigmas, iou_type=iou_type, use_area=False)


def train_config(fixture, field):
    """One epoch of a tiny model on the fixture, validated on itself (paths relative to the config)."""
    return {"data": {"train_annotations": fixture["gt"], "train_images": fixture["image_root"],
                     "val_annotations": fixture["gt"], "val_images": fixture["image_root"], "keypoint_field": field},
            "input_size": [64, 64], "heatmap_size": [16, 16],
            "model": {"arch": "dy-resnet10", "width": 0.125, "head_channels": 8},
            "loader": {"batch_size": 4, "workers": 1},
            "train": {"epochs": 1, "lr": 0.001, "warmup_iters": 1, "val_every": 1, "log_every": 1}}


def fuzz_case(seed):
    """A random file without `area` in CrowdPose's or COCO's joints, with xtcocotools' quirks in
    reach: ids from 0, `num_keypoints` that disagree with the flags, crowds, persons with few or
    no labelled joints, results whose joints all score 0, duplicated and tied results."""
    r = random.Random(seed)
    k = r.choice([14, 17])
    scene = Scene(seed, CROWDPOSE_POSE if k == 14 else COCO_POSE)
    first = r.choice([0, 1, 10 ** 10])
    ids = [first + i for i in range(r.randint(1, 5))]
    images = [{"file_name": "%d.jpg" % i, "id": i, "width": 320, "height": 240,
               "crowdIndex": r.choice([0, 0.2, 0.5, 0.8, round(r.random(), 2)])} for i in ids]
    anns, people = [], []
    next_id = r.choice([0, 1])
    for image_id in ids:
        for _ in range(r.randint(0, 6)):
            kps, bbox = scene.person(hidden=r.choice([0.1, 0.5, 0.97]))
            crowd = r.random() < 0.1
            count = labelled(kps)
            if r.random() < 0.2:
                count = r.choice([0, count + 1, 15])
            anns.append({"id": next_id, "image_id": image_id, "category_id": 1, "bbox": bbox,
                         "keypoints": [0] * (3 * k) if crowd else kps, "iscrowd": int(crowd), "num_keypoints": count})
            if not crowd:
                people.append({"image_id": image_id, "kps": kps, "bbox": bbox})
            next_id += 1
    results = scene.results(people, k, ids, zero_scored=min(len(people), r.choice([0, 1, 2])))
    for res in list(results):
        if r.random() < 0.15:
            results.append(dict(res, score=res["score"] if r.random() < 0.5 else round(r.random(), 1)))
    names = CROWDPOSE_RELEASE if k == 14 else COCO_NAMES
    gt = {"images": images, "annotations": anns, "categories": [category(names, [])]}
    sigmas = crowdpose_sigmas() if k == 14 else [s / 10.0 for s in [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62,
                                                                    .62, 1.07, 1.07, .87, .87, .89, .89]]
    return gt, results, sigmas


def fuzz(n, seed, dypose):
    """Compares dypose's `eval` (both metrics) with xtcocotools on `n` random files."""
    import subprocess
    differ = 0
    for case in range(n):
        gt, results, sigmas = fuzz_case(seed + case)
        with tempfile.TemporaryDirectory() as tmp:
            gt_path, res_path = os.path.join(tmp, "gt.json"), os.path.join(tmp, "results.json")
            json.dump(gt, open(gt_path, "w"))
            json.dump(results, open(res_path, "w"))
            for metric, iou_type in [("coco", "keypoints"), ("crowdpose", "keypoints_crowd")]:
                want = xtcocotools_stats(gt_path, res_path, sigmas, iou_type=iou_type, use_area=False)
                out = os.path.join(tmp, metric + ".json")
                p = subprocess.run([dypose, "eval", "--gt", gt_path, "--results", res_path, "--metric", metric,
                                    "--json", out], capture_output=True, text=True)
                got = list(json.load(open(out)).values()) if p.returncode == 0 else None
                if got is None or len(got) != len(want) or any(abs(a - b) > 1e-9 for a, b in zip(got, want)):
                    differ += 1
                    keep = tempfile.mkdtemp(prefix="dypose_fuzz_%d_%s_" % (seed + case, metric))
                    shutil.copytree(tmp, keep, dirs_exist_ok=True)
                    print("DIFFER case %d %s: dypose %s, xtcocotools %s (%s); kept in %s"
                          % (seed + case, metric, got, want, p.stderr.strip(), keep))
    print("%d random files, %d differ" % (n, differ))
    return 1 if differ else 0


def versions():
    from importlib.metadata import version
    return {"pycocotools": version("pycocotools"), "xtcocotools": version("xtcocotools")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="recompute the stats and compare with fixture.json")
    ap.add_argument("--fuzz", type=int, metavar="N", help="compare N random files with xtcocotools instead")
    ap.add_argument("--seed", type=int, default=5000)
    ap.add_argument("--dypose", default=os.path.join(ROOT, "target", "release", "dypose"))
    a = ap.parse_args()
    if a.fuzz:
        return fuzz(a.fuzz, a.seed, a.dypose)
    bad = 0
    if not a.check:
        shutil.rmtree(OUT, ignore_errors=True)
    for name, build in FIXTURES.items():
        d = os.path.join(OUT, name)
        fixture = build()
        if not a.check:
            os.makedirs(os.path.dirname(os.path.join(d, fixture["gt"])), exist_ok=True)
            json.dump(fixture["gt_value"], open(os.path.join(d, fixture["gt"]), "w"))
            json.dump(fixture["results"], open(os.path.join(d, "results.json"), "w"))
            if "boxes" in fixture:
                json.dump(fixture["boxes"], open(os.path.join(d, "boxes.json"), "w"))
            if "results_21" in fixture:
                json.dump(fixture["results_21"], open(os.path.join(d, "results_21.json"), "w"))
            for rel, (w, h, seed) in fixture["images"].items():
                write_image(os.path.join(d, fixture["image_root"], rel), w, h, seed)
            for scored in fixture["scored"]:
                field = scored.get("keypoint_field", "keypoints")
                config = "train.json" if field == "keypoints" else "train_%s.json" % field
                json.dump(train_config(fixture, field), open(os.path.join(d, config), "w"), indent=1)
        expected = []
        for scored in fixture["scored"]:
            stats = stats_of(d, fixture, scored)
            field = scored.get("keypoint_field", "keypoints")
            expected.append({"metric": scored["metric"], "keypoint_field": field,
                             "config": "train.json" if field == "keypoints" else "train_%s.json" % field,
                             "results": scored.get("results", "results.json"), "reference": scored["reference"],
                             "limbs_from": scored["limbs_from"],
                             "stats": stats})
            print("%-16s %-28s %s" % (name, scored["reference"], " ".join("%.4f" % s for s in stats)))
        manifest = {"gt": fixture["gt"], "images": fixture["image_root"], "expected": expected, "versions": versions()}
        if "boxes" in fixture:
            # Box evaluation of a file without `area`: xtcocotools' bbox rules with use_area=False.
            box_stats = xtcocotools_box_stats(os.path.join(d, fixture["gt"]), os.path.join(d, "boxes.json"))
            manifest["expected_boxes"] = {"results": "boxes.json", "reference": "xtcocotools bbox", "stats": box_stats}
            print("%-16s %-28s %s" % (name, "xtcocotools bbox", " ".join("%.4f" % s for s in box_stats)))
            expected.append({"stats": box_stats})
        path = os.path.join(d, "fixture.json")
        if a.check:
            committed = json.load(open(path))
            old = committed["expected"] + ([committed["expected_boxes"]] if "expected_boxes" in committed else [])
            if [e["stats"] for e in old] != [e["stats"] for e in expected]:
                bad += 1
                print("MISMATCH", name)
        else:
            manifest["expected"] = [e for e in expected if "metric" in e]
            json.dump(manifest, open(path, "w"), indent=1)
    print("%d fixtures%s" % (len(FIXTURES), (", %d mismatches" % bad) if a.check else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
