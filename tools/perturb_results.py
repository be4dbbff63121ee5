#!/usr/bin/env python3
"""Writes a keypoint results file for a COCO person-keypoint GT file, made from the GT persons
with a known mix of the errors `dypose eval --analyze` tells apart, so that its report can be
read against what was put in. Standard library only.

    python3 tools/gen_coco_like.py val --out bench-data
    python3 tools/perturb_results.py bench-data/person_keypoints_val_like.json \\
        --out bench-data/results_perturbed.json
    dypose eval --gt bench-data/person_keypoints_val_like.json \\
        --results bench-data/results_perturbed.json --analyze analysis

Per labelled, non-crowd GT person: missed with probability --missed; else one detection whose
joints are the GT joints plus Gaussian noise of a per-detection size c (ks = exp(-c^2/2 · E),
E ~ Exp(1), c drawn from [0.2, 0.9]), then, per joint, an inversion (both joints of a left/right pair exchanged,
per pair), a swap (the joint of another labelled person of the image), or a miss (a random
point of the box), with the given probabilities. Scores follow the noise loosely. Also a
duplicate of some persons (more noise, lower score) and false positives far from anyone.
Prints the injected counts.
"""
import argparse
import json
import math
import random
import sys

FLIP_PAIRS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
SIGMAS = [.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089]


def joints_of(ann):
    k = ann["keypoints"]
    return [(k[3 * j], k[3 * j + 1], k[3 * j + 2]) for j in range(len(k) // 3)]


def detect(r, ann, others, args, counts):
    """The joints of one detection of `ann` and its noise size c."""
    gt = joints_of(ann)
    x, y, w, h = ann["bbox"]
    scale = math.sqrt(max(ann["area"], 1.0))
    c = r.uniform(.2, .9)
    # A joint the GT does not label is predicted at the box centre.
    pts = [[px, py] if v > 0 else [x + w / 2, y + h / 2] for (px, py, v) in gt]
    for j, p in enumerate(pts):
        # Per-axis std a = c·2σ·√area/√2: d²/(2·area·(2σ)²) is c²/2 times an Exp(1) draw.
        a = c * 2 * SIGMAS[j] * scale / math.sqrt(2)
        p[0] += r.gauss(0, a)
        p[1] += r.gauss(0, a)
    labelled = [v > 0 for (_, _, v) in gt]
    for a, b in FLIP_PAIRS:
        if labelled[a] and labelled[b] and r.random() < args.inversion:
            pts[a], pts[b] = pts[b], pts[a]
            counts["inverted joints"] += 2
    swappable = [o for o in others if o is not ann]
    for j in range(len(pts)):
        if not labelled[j]:
            continue
        u = r.random()
        donors = [o for o in swappable if joints_of(o)[j][2] > 0]
        if u < args.swap and donors:
            ox, oy, _ = joints_of(r.choice(donors))[j]
            pts[j] = [ox, oy]
            counts["swapped joints"] += 1
        elif u < args.swap + args.miss:
            pts[j] = [r.uniform(x - w / 2, x + 1.5 * w), r.uniform(y - h / 2, y + 1.5 * h)]
            counts["missed joints"] += 1
    return pts, c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--missed", type=float, default=.08, help="share of persons not detected")
    ap.add_argument("--inversion", type=float, default=.04, help="per left/right pair")
    ap.add_argument("--swap", type=float, default=.02, help="per joint")
    ap.add_argument("--miss", type=float, default=.04, help="per joint")
    ap.add_argument("--duplicates", type=float, default=.15, help="share of detections detected twice")
    ap.add_argument("--false-positives", type=float, default=1.0, help="per image, on average")
    args = ap.parse_args()
    r = random.Random(args.seed)
    with open(args.gt) as f:
        gt = json.load(f)
    by_image = {}
    for ann in gt["annotations"]:
        if not ann.get("iscrowd") and ann.get("num_keypoints", 0) > 0:
            by_image.setdefault(ann["image_id"], []).append(ann)
    counts = {k: 0 for k in ["persons", "missed persons", "inverted joints", "swapped joints", "missed joints",
                             "duplicates", "false positives"]}
    results = []

    def emit(image_id, pts, score):
        kps = []
        for px, py in pts:
            kps += [round(px, 2), round(py, 2), 1]
        results.append({"image_id": image_id, "category_id": 1, "keypoints": kps, "score": round(score, 4)})

    for img in gt["images"]:
        persons = by_image.get(img["id"], [])
        for ann in persons:
            counts["persons"] += 1
            if r.random() < args.missed:
                counts["missed persons"] += 1
                continue
            pts, c = detect(r, ann, persons, args, counts)
            emit(img["id"], pts, min(1.0, max(0.0, 1.0 - c + r.gauss(0, .15))))
            if r.random() < args.duplicates:
                pts, c = detect(r, ann, persons, args, counts)
                pts = [[px + r.gauss(0, 8), py + r.gauss(0, 8)] for px, py in pts]
                emit(img["id"], pts, min(1.0, max(0.0, .6 - c + r.gauss(0, .15))))
                counts["duplicates"] += 1
        n_fp = sum(1 for _ in range(4) if r.random() < args.false_positives / 4)
        for _ in range(n_fp):
            # A person-shaped set of points somewhere in the image, rarely near a GT person.
            cx, cy, s = r.uniform(0, img["width"]), r.uniform(0, img["height"]), r.uniform(20, 150)
            pts = [[cx + r.gauss(0, s / 3), cy + r.gauss(0, s / 2)] for _ in SIGMAS]
            emit(img["id"], pts, r.uniform(0, .7))
            counts["false positives"] += 1
    with open(args.out, "w") as f:
        json.dump(results, f)
    print("%s: %d results; injected: %s" % (args.out, len(results), ", ".join("%s %d" % kv for kv in counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
