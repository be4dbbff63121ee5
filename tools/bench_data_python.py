#!/usr/bin/env python3
"""The same data pipeline written the usual Python way (SimpleBaseline/mmpose style), for
comparison with `dypose bench data`: cv2.imread, random half-body/scale/rotation/flip,
get_affine_transform + cv2.warpAffine, numpy normalisation and Gaussian targets, np.stack
into batches; one worker process per core (multiprocessing.Pool, as a PyTorch DataLoader with
num_workers = cores would do).

    pip install opencv-python-headless numpy
    python3 tools/bench_data_python.py --ann data/coco-sample/annotations/person_keypoints_sample.json \
        --images data/coco-sample/val2017 --samples 512 --workers 2

Last line: {"samples": ..., "seconds": ..., "samples_per_s": ..., "workers": ...}
"""
import argparse
import json
import multiprocessing as mp
import os
import time

import cv2
import numpy as np

cv2.setNumThreads(0)  # one process per core does the parallelism, as in a PyTorch DataLoader
W, H, HW, HH, SIGMA = 192, 256, 48, 64, 2
FLIP_PAIRS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def box_to_cs(x, y, w, h, aspect=W / H, pad=1.25):
    c = np.array([x + w * .5, y + h * .5], np.float32)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return c, np.array([w, h], np.float32) * pad


def get_dir(p, r):
    sn, cs = np.sin(r), np.cos(r)
    return [p[0] * cs - p[1] * sn, p[0] * sn + p[1] * cs]


def third(a, b):
    d = a - b
    return b + np.array([-d[1], d[0]], np.float32)


def get_affine_transform(center, size, rot):
    src_dir = get_dir([0, size[0] * -0.5], np.pi * rot / 180)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = center + src_dir
    dst[0] = [W * .5, H * .5]
    dst[1] = np.array([W * .5, H * .5]) + [0, W * -0.5]
    src[2] = third(src[0], src[1])
    dst[2] = third(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst)


def half_body(joints, vis):
    upper = [joints[j] for j in range(17) if vis[j] > 0 and j <= 10]
    lower = [joints[j] for j in range(17) if vis[j] > 0 and j > 10]
    sel = upper if (np.random.randn() < 0.5 and len(upper) > 2) else (lower if len(lower) > 2 else upper)
    if len(sel) < 2:
        return None, None
    sel = np.array(sel, np.float32)
    lt, rb = sel.min(0), sel.max(0)
    c, s = box_to_cs(0, 0, rb[0] - lt[0], rb[1] - lt[1], pad=1.5)
    return sel.mean(0), s


def targets(joints, vis):
    target = np.zeros((17, HH, HW), np.float32)
    weight = (vis > 0).astype(np.float32)
    tmp = SIGMA * 3
    size = 2 * tmp + 1
    x = np.arange(0, size, 1, np.float32)
    y = x[:, None]
    g = np.exp(-((x - tmp) ** 2 + (y - tmp) ** 2) / (2 * SIGMA ** 2))
    for j in range(17):
        mx, my = int(joints[j][0] / 4 + 0.5), int(joints[j][1] / 4 + 0.5)
        ul, br = [mx - tmp, my - tmp], [mx + tmp + 1, my + tmp + 1]
        if ul[0] >= HW or ul[1] >= HH or br[0] < 0 or br[1] < 0:
            weight[j] = 0
            continue
        gx = max(0, -ul[0]), min(br[0], HW) - ul[0]
        gy = max(0, -ul[1]), min(br[1], HH) - ul[1]
        ix = max(0, ul[0]), min(br[0], HW)
        iy = max(0, ul[1]), min(br[1], HH)
        if weight[j] > 0.5:
            target[j, iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
    return target, weight


def sample(inst):
    path, bbox, kps, seed = inst
    np.random.seed(seed)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    joints = np.array(kps, np.float32).reshape(17, 3)
    vis = joints[:, 2].copy()
    joints = joints[:, :2].copy()
    c, s = box_to_cs(*bbox)
    if (vis > 0).sum() > 8 and np.random.rand() < 0.3:
        hc, hs = half_body(joints, vis)
        if hc is not None:
            c, s = hc, hs
    s = s * np.clip(np.random.randn() * 0.35 + 1, 0.65, 1.35)
    r = np.clip(np.random.randn() * 45, -90, 90) if np.random.rand() <= 0.6 else 0
    if np.random.rand() <= 0.5:
        img = img[:, ::-1, :]
        joints[:, 0] = img.shape[1] - joints[:, 0] - 1
        for a, b in FLIP_PAIRS:
            joints[[a, b]] = joints[[b, a]]
            vis[[a, b]] = vis[[b, a]]
        c[0] = img.shape[1] - c[0] - 1
    trans = get_affine_transform(c, s, r)
    crop = cv2.warpAffine(img, trans, (W, H), flags=cv2.INTER_LINEAR)
    inp = ((crop.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    moved = np.concatenate([joints, np.ones((17, 1), np.float32)], 1) @ trans.T
    t, w = targets(moved, vis)
    return inp, t, w


def batch(items):
    out = [sample(i) for i in items]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), np.stack([o[2] for o in out])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ann", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    gt = json.load(open(a.ann))
    files = {im["id"]: os.path.join(a.images, im["file_name"]) for im in gt["images"]}
    base = [(files[x["image_id"]], x["bbox"], x["keypoints"]) for x in gt["annotations"]
            if not x.get("iscrowd") and max(x["keypoints"][2::3]) > 0]
    inst = [base[i % len(base)] + (i,) for i in range(a.samples)]
    chunks = [inst[i:i + a.batch] for i in range(0, len(inst), a.batch)]
    with mp.Pool(a.workers) as pool:
        pool.map(batch, chunks[:1])  # warm-up: workers started, imports done
        start = time.perf_counter()
        n = sum(len(b[0]) for b in pool.imap(batch, chunks))
        secs = time.perf_counter() - start
    print("%8s %8s %10s %12s" % ("samples", "workers", "seconds", "samples/s"))
    print("%8d %8d %10.3f %12.1f" % (n, a.workers, secs, n / secs))
    print(json.dumps({"samples": n, "seconds": secs, "samples_per_s": n / secs, "workers": a.workers}))


if __name__ == "__main__":
    main()
