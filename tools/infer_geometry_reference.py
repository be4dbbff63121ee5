#!/usr/bin/env python3
"""Writes the reference for tests/infer_geometry.rs, computed here without dypose: for every
detector box of the real COCO sample, the heatmaps a perfect network would give (the GT person
the box overlaps most, encoded as SimpleBaseline encodes targets), decoded as SimpleBaseline
decodes them, mapped back to the image, rescored and suppressed by OKS-NMS as mmpose does;
then pycocotools' 10 stats for those results.

    pip install numpy pycocotools
    python3 tools/infer_geometry_reference.py

The crop geometry (box -> centre/scale, aspect 0.75, padding 1.25, the crop affine and its
inverse), the 64x48 Gaussian targets (sigma 2, 13x13 window around int(x/4 + 0.5)), argmax +
quarter offset, rescoring (box score x mean joint score above 0.2) and OKS-NMS (0.9, mean of the
two crop areas) follow SimpleBaseline's reference code, in float32 where the reference
computes in float32.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from pycoco_eval import pycocotools_stats  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GT = os.path.join(ROOT, "data", "coco-sample", "annotations", "person_keypoints_sample.json")
DETS = os.path.join(ROOT, "data", "coco-sample", "annotations", "person_detections_sample.json")
OUT = os.path.join(ROOT, "tests", "data", "infer_geometry")

IN_W, IN_H, HM_W, HM_H, SIGMA, PADDING = 192, 256, 48, 64, 2.0, 1.25
SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0


def crop_affine(bbox):
    """(region size, forward 2x3, inverse 2x3) of a box, as SimpleBaseline crops it."""
    x, y, w, h = bbox
    aspect = IN_W / IN_H
    cx, cy = x + w * 0.5, y + h * 0.5
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    sw, sh = w * PADDING, h * PADDING
    k = IN_W / sw
    m = [k, 0.0, IN_W * 0.5 - k * cx, 0.0, k, IN_H * 0.5 - k * cy]
    # cv2.invertAffineTransform's arithmetic.
    det = m[0] * m[4] - m[1] * m[3]
    d = 1.0 / det
    a11, a22, a12, a21 = m[4] * d, m[0] * d, m[1] * -d, m[3] * -d
    inv = [a11, a12, -a11 * m[2] - a12 * m[5], a21, a22, -a21 * m[2] - a22 * m[5]]
    return (sw, sh), m, inv


def encode(joints, visible):
    """SimpleBaseline's targets: one 64x48 float32 map per joint."""
    maps = np.zeros((len(joints), HM_H, HM_W), np.float32)
    stride = np.float32(IN_W) / np.float32(HM_W)
    r = int(SIGMA * 3)
    for j, ((qx, qy), vis) in enumerate(zip(joints, visible)):
        if not vis:
            continue
        mx, my = np.float32(qx) / stride, np.float32(qy) / stride
        cx, cy = int(mx + np.float32(0.5)), int(my + np.float32(0.5))  # int() truncates, as Python's does
        if cx - r >= HM_W or cy - r >= HM_H or cx + r + 1 < 0 or cy + r + 1 < 0:
            continue
        for yy in range(max(cy - r, 0), min(cy + r + 1, HM_H)):
            for xx in range(max(cx - r, 0), min(cx + r + 1, HM_W)):
                d2 = np.float32((xx - cx) ** 2 + (yy - cy) ** 2)
                maps[j, yy, xx] = np.exp(-d2 / np.float32(2 * SIGMA * SIGMA))
    return maps


def decode(maps):
    """Argmax + a quarter pixel towards the higher neighbour, in input-crop pixels."""
    out = []
    stride = IN_W / HM_W
    for m in maps:
        i = int(np.argmax(m))  # the first maximum in row-major order
        py, px = divmod(i, HM_W)
        score = float(m[py, px])
        x, y = float(px), float(py)
        if score > 0:
            if 1 < px < HM_W - 1 and 1 < py < HM_H - 1:
                x += 0.25 * float(np.sign(m[py, px + 1] - m[py, px - 1]))
                y += 0.25 * float(np.sign(m[py + 1, px] - m[py - 1, px]))
        else:
            x, y = 0.0, 0.0
        out.append((x * stride, y * stride, score))
    return out


def iou(a, b):
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def oks(a, area_a, b, area_b):
    """mmpose's oks_iou: all joints, the mean of the two areas as the scale."""
    scale = (area_a + area_b) / 2.0 + np.finfo(np.float64).eps
    var = (2 * SIGMAS) ** 2
    e = sum(np.exp(-((q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2) / var[j] / scale / 2.0)
            for j, (p, q) in enumerate(zip(a, b)))
    return e / len(a)


def oks_nms(persons, threshold=0.9):
    order = sorted(range(len(persons)), key=lambda i: persons[i]["score"])[::-1]
    keep = []
    while order:
        i = order[0]
        keep.append(i)
        order = [d for d in order[1:]
                 if oks(persons[i]["kps"], persons[i]["area"], persons[d]["kps"], persons[d]["area"]) <= threshold]
    return [persons[i] for i in keep]


def main():
    gt = json.load(open(GT))
    dets = json.load(open(DETS))
    by_image = {}
    for d in dets:
        if d["category_id"] != 1 or d["score"] < 0 or d["bbox"][2] <= 0 or d["bbox"][3] <= 0:
            continue
        (sw, sh), m, inv = crop_affine(d["bbox"])
        best, best_iou = None, 0.0
        for a in gt["annotations"]:
            labelled = any(v > 0 for v in a["keypoints"][2::3])
            if a["image_id"] != d["image_id"] or a["iscrowd"] or not labelled:
                continue
            o = iou(d["bbox"], a["bbox"])
            if o > 0 and (best is None or o >= best_iou):  # the last of equal overlaps, as Rust's max_by
                best, best_iou = a, o
        if best is None:
            joints, visible = [(0.0, 0.0)] * 17, [False] * 17
        else:
            k = best["keypoints"]
            joints = [(np.float32(m[0] * k[3 * j] + m[1] * k[3 * j + 1] + m[2]),
                       np.float32(m[3] * k[3 * j] + m[4] * k[3 * j + 1] + m[5])) for j in range(17)]
            visible = [k[3 * j + 2] > 0 for j in range(17)]
        kps = []
        for (x, y, s) in decode(encode(joints, visible)):
            kps.append((inv[0] * x + inv[1] * y + inv[2], inv[3] * x + inv[4] * y + inv[5], s))
        confident = [s for (_, _, s) in kps if s > 0.2]
        score = d["score"] * (sum(confident) / len(confident)) if confident else 0.0
        by_image.setdefault(d["image_id"], []).append({"kps": kps, "score": score, "area": sw * sh})
    results = []
    for image_id in sorted(by_image):
        for p in oks_nms(by_image[image_id]):
            flat = [float(v) for kp in p["kps"] for v in kp]
            results.append({"image_id": image_id, "category_id": 1, "keypoints": flat, "score": float(p["score"])})
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "detector_results.json")
    with open(path, "w") as f:
        json.dump(results, f)
    stats = pycocotools_stats(GT, path)
    with open(os.path.join(OUT, "pycocotools_stats.json"), "w") as f:
        json.dump(stats, f)
    print(len(results), "results; pycocotools stats:", stats)


if __name__ == "__main__":
    main()
