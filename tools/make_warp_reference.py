#!/usr/bin/env python3
"""Reference crops from OpenCV for tests/warp_vs_opencv.rs (`pip install opencv-python-headless`).

For fixed (center, size, rotation, flip) per person of the real COCO sample, crops 192x256 the
way the reference pipelines do: flip the pixel array (and mirror the centre), build the 2x3 map,
then cv2.warpAffine(..., flags=cv2.INTER_LINEAR). Writes into tests/data/warp/:
  sources/<image>.png  the image as cv2 decodes it (lossless), so the test warps the same pixels
  <n>.png              the reference crops
  crops.json           the parameters of each crop and the OpenCV version
"""
import json
import math
import os

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "coco-sample")
OUT = os.path.join(ROOT, "tests", "data", "warp")
W, H = 192, 256
ROTATIONS = [0.0, 30.0, -45.0, 90.0, 17.5, -133.0, 60.0, 0.0]


def crop_matrix(center, size, rot_deg):
    """Closed form of SimpleBaseline's get_affine_transform (float64)."""
    k = W / size[0]
    sn, cs = math.sin(math.radians(rot_deg)), math.cos(math.radians(rot_deg))
    a, b, d, e = k * cs, k * sn, -k * sn, k * cs
    return np.array([[a, b, W * 0.5 - a * center[0] - b * center[1]],
                     [d, e, H * 0.5 - d * center[0] - e * center[1]]], dtype=np.float64)


def region(bbox):
    x, y, w, h = bbox
    aspect = W / H
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return [x + bbox[2] * 0.5, y + bbox[3] * 0.5], [w * 1.25, h * 1.25]


def main():
    gt = json.load(open(os.path.join(SAMPLE, "annotations", "person_keypoints_sample.json")))
    os.makedirs(os.path.join(OUT, "sources"), exist_ok=True)
    crops = []
    for img_rec in gt["images"]:
        name = img_rec["file_name"]
        bgr = cv2.imread(os.path.join(SAMPLE, "val2017", name), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        src_png = os.path.join("sources", name.replace(".jpg", ".png"))
        cv2.imwrite(os.path.join(OUT, src_png), bgr)
        anns = [a for a in gt["annotations"] if a["image_id"] == img_rec["id"] and a["bbox"][2] > 20]
        for a in anns[:2]:
            n = len(crops)
            rot = ROTATIONS[n % len(ROTATIONS)]
            flip = n % 2 == 1
            center, size = region(a["bbox"])
            img = rgb
            c = list(center)
            if flip:  # the reference way: flip the pixels, mirror the centre
                img = np.ascontiguousarray(rgb[:, ::-1])
                c[0] = rgb.shape[1] - c[0] - 1
            crop = cv2.warpAffine(img, crop_matrix(c, size, rot), (W, H), flags=cv2.INTER_LINEAR)
            out = "%02d.png" % n
            cv2.imwrite(os.path.join(OUT, out), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            crops.append({"image": name, "source_png": src_png, "center": center, "size": size,
                          "rotation": rot, "flip": flip, "crop": out})
    json.dump({"opencv": cv2.__version__, "output_size": [W, H], "crops": crops},
              open(os.path.join(OUT, "crops.json"), "w"), indent=1)
    print("%d crops with OpenCV %s in %s" % (len(crops), cv2.__version__, OUT))


if __name__ == "__main__":
    main()
