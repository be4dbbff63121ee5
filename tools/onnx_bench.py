#!/usr/bin/env python3
"""CPU inference speed, side by side in one run: onnxruntime on the models `dypose export`
writes (each form of dynamic convolution) against `dypose bench model --inference-only`.

    pip install onnxruntime==1.32.0
    cargo build --release
    python3 tools/onnx_bench.py [--rounds 3] [--reps 3]

Both run on every core of the machine (onnxruntime's intra-op threads = dypose's rayon
threads), one after the other, alternating `--rounds` times; each figure is the median over
rounds of a median over `--reps` timed batches. Weights are fresh (`dypose init`): speed does
not depend on them. Prints a Markdown table of images/s and the ratio onnxruntime / dypose.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort

MODELS = [
    ("DY-ResNet-18", "configs/dy_resnet18_coco.json", True),
    ("ResNet-18", "configs/resnet18_coco.json", False),
    ("DY-MobileNetV2", "configs/dy_mobilenetv2_coco.json", True),
]
FORMS = ["experts", "matmul", "grouped"]


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def ort_seconds(path, x, reps, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sess.run(None, {"input": x})
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def dypose_seconds(binary, config, batch, reps):
    out = run([binary, "bench", "model", "--config", config, "--batch", str(batch), "--iters", str(reps),
               "--inference-only"])
    stats = json.loads(out.strip().splitlines()[-1])
    return batch / stats["inference_img_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dypose", default="target/release/dypose")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    threads = os.cpu_count()
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, config, dynamic in MODELS:
            ck = os.path.join(tmp, "weights.safetensors")
            run([args.dypose, "init", "--config", config, "--out", ck, "--force"])
            for batch in batches:
                forms = FORMS if dynamic else ["experts"]
                files = {}
                for form in forms:
                    files[form] = os.path.join(tmp, f"{form}.onnx")
                    cmd = [args.dypose, "export", "--checkpoint", ck, "--config", config, "--out", files[form],
                           "--form", form, "--force"]
                    if form == "grouped":
                        cmd += ["--batch", str(batch)]
                    run(cmd)
                with open(config) as f:
                    size = json.load(f).get("input_size", [192, 256])
                x = np.random.default_rng(0).standard_normal((batch, 3, size[1], size[0])).astype(np.float32)
                ours, theirs = [], {f: [] for f in forms}
                for _ in range(args.rounds):
                    ours.append(dypose_seconds(args.dypose, config, batch, args.reps))
                    for form in forms:
                        theirs[form].append(ort_seconds(files[form], x, args.reps, threads))
                d = batch / statistics.median(ours)
                o = {f: batch / statistics.median(t) for f, t in theirs.items()}
                rows.append((name, batch, d, o))
                print(f"{name} batch {batch}: dypose {d:.2f} img/s, onnxruntime "
                      + ", ".join(f"{f} {v:.2f}" for f, v in o.items()), flush=True)
    print(f"\nCPU, {threads} threads, onnxruntime {ort.__version__}; images/s, median of {args.rounds} rounds × {args.reps} batches\n")
    print("| model | batch | dypose | ORT experts | ORT matmul | ORT grouped | best ORT / dypose |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, d, o in rows:
        cell = lambda f: f"{o[f]:.2f}" if f in o else "= experts"
        best = max(o.values())
        print(f"| {name} | {batch} | {d:.2f} | {cell('experts')} | {cell('matmul')} | {cell('grouped')} | {best / d:.2f}× |")


if __name__ == "__main__":
    main()
