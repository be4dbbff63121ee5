#!/usr/bin/env python3
"""The paper's full-size networks, exported by `dypose export`, checked by two independent
consumers: onnx's checker (`check_model(full_check=True)`) and onnxruntime on the CPU, whose
outputs are compared with dypose's own (`dypose export --reference`: seeded inputs and what
dypose's forward pass and decoding give for them), at batch 1, 8 and 32 where the batch is
dynamic.

    pip install onnx==1.23.2 onnxruntime==1.32.0
    cargo build --release
    python3 tools/onnx_check.py [--quick] [--only classifier]

Weights are fresh (`dypose init`): the check is of the graph, not of a training run. Prints a
Markdown table; exits 1 if anything differs beyond the bounds: maps and logits 1e-4 relative,
joints and boxes 1e-3 px, counts exactly.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

# (name, what `dypose init` is given, export flags)
MODELS = [
    ("DY-ResNet-18 pose", ["--config", "configs/dy_resnet18_coco.json"], ["--decode", "--flip"]),
    ("ResNet-18 pose", ["--config", "configs/resnet18_coco.json"], ["--decode", "--flip"]),
    ("DY-MobileNetV2 pose", ["--config", "configs/dy_mobilenetv2_coco.json"], ["--decode", "--flip"]),
    ("MobileNetV2 pose", ["--config", "configs/mobilenetv2_coco.json"], ["--decode", "--flip"]),
    ("DY-MobileNetV3-Small pose", ["--config", "configs/dy_mobilenetv3_small_coco.json"], ["--decode", "--flip"]),
    ("DY-ResNet-18 detector", ["--config", "configs/detect_dy_resnet18_coco.json"], ["--decode", "--flip"]),
    ("DY-MobileNetV2 classifier", ["--arch", "dy-mobilenetv2", "--classifier", "1000"], ["--decode"]),
]
# (form, batches): the dynamic forms at every batch, the fixed-batch form at one.
FORMS = [("experts", [1, 8, 32]), ("matmul", [8]), ("grouped", [1])]
QUICK_FORMS = [("experts", [1, 8]), ("grouped", [1])]


def run(cmd):
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def near_ties(maps, rel_gap=1e-5):
    """Joints (flattened n·J) whose decoding two runtimes may legitimately disagree on: the two
    largest heatmap values, or the quarter step's neighbours, equal to float rounding."""
    n, j, h, w = maps.shape
    flat = maps.reshape(n * j, h * w)
    top = np.sort(flat, axis=1)
    scale = np.abs(top[:, -1]) + 1e-30
    tie = (top[:, -1] - top[:, -2]) <= rel_gap * scale
    idx = flat.argmax(axis=1)
    py, px = idx // w, idx % w
    for k in range(n * j):
        m = flat[k].reshape(h, w)
        x, y = px[k], py[k]
        if 0 < x < w - 1 and abs(m[y, x + 1] - m[y, x - 1]) <= rel_gap * scale[k]:
            tie[k] = True
        if 0 < y < h - 1 and abs(m[y + 1, x] - m[y - 1, x]) <= rel_gap * scale[k]:
            tie[k] = True
    return tie


def compare(name, got, ref, want):
    """(error, bound) of one output against dypose's."""
    g, r = got[name], ref[name]
    assert g.shape == r.shape, f"{name}: shape {g.shape}, dypose {r.shape}"
    if name == "keypoints":
        ties = near_ties(ref["heatmaps"])
        d = np.abs(g - r).reshape(-1, 2).max(axis=1)
        return float(d[~ties].max(initial=0.0)), 1e-3
    if name == "boxes":
        err = 0.0
        for i in range(g.shape[0]):
            count = int(ref["num_detections"][i])
            for b in r[i, :count]:
                err = max(err, float(np.abs(g[i, :count] - b).max(axis=1).min()))
        return err, 1e-3
    if g.dtype == np.int64:
        return float(np.abs(g - r).max()), 0.0
    return rel(g, r), 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dypose", default="target/release/dypose")
    ap.add_argument("--quick", action="store_true", help="batches 1 and 8, two forms")
    ap.add_argument("--only", default="", help="only the networks whose name contains this")
    args = ap.parse_args()
    forms = QUICK_FORMS if args.quick else FORMS
    rows, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for name, init, flags in [m for m in MODELS if args.only in m[0]]:
            ck = os.path.join(tmp, "weights.safetensors")
            run([args.dypose, "init", *init, "--out", ck, "--force"])
            config = init[1:2] if init[0] == "--config" else []
            for form, batches in forms:
                path = os.path.join(tmp, f"{form}.onnx")
                refdir = os.path.join(tmp, f"reference_{form}")
                cmd = [args.dypose, "export", "--checkpoint", ck, "--out", path, "--form", form, "--force",
                       "--reference", refdir, "--reference-batches", ",".join(map(str, batches)), *flags]
                if config:
                    cmd += ["--config", config[0]]
                if form == "grouped":
                    cmd += ["--batch", str(batches[0])]
                run(cmd)
                onnx.checker.check_model(path, full_check=True)
                sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                names = [o.name for o in sess.get_outputs()]
                for n in batches:
                    x = np.load(os.path.join(refdir, f"input_b{n}.npy"))
                    got = dict(zip(names, sess.run(None, {"input": x})))
                    ref = {k: np.load(os.path.join(refdir, f"{k}_b{n}.npy")) for k in names}
                    results = {k: compare(k, got, ref, names) for k in names}
                    ok = all(e <= bound for e, bound in results.values())
                    failed |= not ok
                    cells = ", ".join(f"{k} {e:.1e}" for k, (e, _) in results.items())
                    rows.append(f"| {name} | {form} | {n} | {cells} | {'ok' if ok else 'DIFFERS'} |")
                    print(rows[-1], flush=True)
                os.remove(path)
    print(f"\nonnx {onnx.__version__} checker (full_check) passed on every file; onnxruntime {ort.__version__} CPU\n")
    print("| network | form | batch | largest difference from dypose (maps/logits relative, joints/boxes px) | |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
