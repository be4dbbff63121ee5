#!/usr/bin/env python3
"""dypose's CPU speed against PyTorch's on the same machine, in paired rounds.

For each model (a dypose config) and each round, `dypose bench model` and the same network in
PyTorch (tools/torch_pose_bench.py's `build`, eval mode under no_grad for inference; train mode,
MSE loss and backward for training; fp32, every core) are timed one after the other, the order
alternating between rounds, so that a slow spell of this shared machine hits both sides of a pair.
The ratio dypose / PyTorch (img/s) is taken per pair; the table gives the median of the ratios
and their range, with the median img/s of each side:

  inference at batch 1 and 8, training (forward + backward, no optimiser step) at batch 8.

  python3 tools/cpu_vs_torch.py [--dypose target/release/dypose] [--pairs 5] [--iters 3] \
      [--before OLD_DYPOSE] [--models configs/dy_resnet18_coco.json ...] [--json out.json]

--before adds a third program to each round (an earlier build), so that a change is measured
against both the earlier build and PyTorch under the same conditions. Before anything is timed,
the PyTorch network's parameter count is checked against `dypose info --config C --json`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_pose_bench import build  # noqa: E402

MODELS = [
    "configs/dy_resnet18_coco.json",
    "configs/resnet18_coco.json",
    "configs/dy_mobilenetv2_coco.json",
    "configs/dy_mobilenetv3_small_coco.json",
]
# (column, batch, what): the three measurements of a round.
CASES = [("inference b1", 1, "inference"), ("inference b8", 8, "inference"), ("training b8", 8, "training")]


def dypose_round(binary, config, iters):
    """img/s of each case from `dypose bench model` (its last line is JSON)."""
    out = {}
    for batch, only in ((1, True), (8, False)):
        cmd = [binary, "bench", "model", "--config", config, "--batch", str(batch), "--iters", str(iters)]
        if only:
            cmd.append("--inference-only")
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr}")
        row = json.loads(res.stdout.strip().splitlines()[-1])
        out[f"inference b{batch}"] = row["inference_img_per_s"]
        if not only:
            out["training b8"] = row["training_img_per_s"]
    return out


def median_time(fn, iters):
    fn()  # warm-up (oneDNN primitive creation, allocator)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def torch_round(net, size, iters):
    """img/s of each case for the PyTorch network, timed as `dypose bench model` times its own."""
    w, h = size
    out = {}
    for name, batch, what in CASES:
        x = torch.randn(batch, 3, h, w)
        if what == "inference":
            def step():
                with torch.no_grad():
                    net.eval()(x)
        else:
            with torch.no_grad():
                target = torch.randn(net.eval()(x[:1]).shape[1:]).expand(batch, -1, -1, -1).contiguous()

            def step():
                net.train()
                net.zero_grad(set_to_none=True)
                F.mse_loss(net(x), target).backward()
        out[name] = batch / median_time(step, iters)
    return out


def dypose_params(binary, config):
    res = subprocess.run([binary, "info", "--config", config, "--json"], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)["params"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dypose", default="target/release/dypose")
    ap.add_argument("--before", help="an earlier dypose build, timed in the same rounds")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per measurement (median)")
    ap.add_argument("--json", help="write every round's figures here")
    args = ap.parse_args()

    programs = {"dypose": args.dypose, **({"before": args.before} if args.before else {})}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {os.cpu_count()} cores", flush=True)
    results = {}
    for config in args.models:
        with open(config) as f:
            cfg = json.load(f)
        name = cfg.get("model", {}).get("arch", "dy-resnet18")
        torch.manual_seed(0)
        net = build(cfg.get("model", {}))
        params = sum(p.numel() for p in net.parameters())
        expected = dypose_params(args.dypose, config)
        if params != expected:
            sys.exit(f"{config}: PyTorch network has {params} parameters, dypose's {expected}")
        size = cfg.get("input_size", [192, 256])
        rounds = []
        for r in range(args.pairs):
            order = ["torch", *programs] if r % 2 else [*programs, "torch"]
            row = {}
            for who in order:
                row[who] = torch_round(net, size, args.iters) if who == "torch" else \
                    dypose_round(programs[who], config, args.iters)
            rounds.append(row)
            print(f"{name} round {r + 1}: " + "  ".join(
                f"{case} {row['dypose'][case] / row['torch'][case]:.2f}x" for case, _, _ in CASES), flush=True)
        results[name] = rounds

    print()
    others = [p for p in programs if p != "dypose"]
    head = "| model | case | dypose img/s | PyTorch img/s | dypose / PyTorch (median, range) |"
    head += "".join(f" dypose / {p} |" for p in others)
    print(head)
    print("|---" * (5 + len(others)) + "|")
    for name, rounds in results.items():
        for case, _, _ in CASES:
            ratios = [r["dypose"][case] / r["torch"][case] for r in rounds]
            line = (f"| {name} | {case} | {statistics.median(r['dypose'][case] for r in rounds):.1f} "
                    f"| {statistics.median(r['torch'][case] for r in rounds):.1f} "
                    f"| {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |")
            for p in others:
                rel = [r["dypose"][case] / r[p][case] for r in rounds]
                line += f" {statistics.median(rel):.2f}× ({min(rel):.2f}–{max(rel):.2f}) |"
            print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
