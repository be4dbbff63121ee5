#!/usr/bin/env python3
"""Writes the reference for tests/infer_geometry.rs: the oracle-heatmap results on the sample's
detector boxes (produced by the Rust test itself) and pycocotools' 10 stats for them.

    pip install pycocotools
    python3 tools/infer_geometry_reference.py
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from pycoco_eval import pycocotools_stats  # noqa: E402

root = os.path.join(os.path.dirname(__file__), "..")
out = os.path.join(root, "tests", "data", "infer_geometry")
env = dict(os.environ, DYPOSE_WRITE_REFERENCE="1")
subprocess.run(["cargo", "test", "--release", "--test", "infer_geometry", "detector_boxes"],
               cwd=root, env=env, check=True)
gt = os.path.join(root, "data", "coco-sample", "annotations", "person_keypoints_sample.json")
stats = pycocotools_stats(gt, os.path.join(out, "detector_results.json"))
with open(os.path.join(out, "pycocotools_stats.json"), "w") as f:
    json.dump(stats, f)
print("pycocotools stats:", stats)
