#!/usr/bin/env bash
# Issue 7's checks on a CUDA 13 host, in one command (about 12 minutes on an H100).
#
#   1. tests/cuda_matches_cpu.rs: building blocks at 1e-4, a training step of both paper models
#      against the CPU's rounding spread (prints every parameter);
#   2. `dypose bench model --device cuda` at batch 32 and 64 for DY-ResNet-18 and DY-MobileNetV2,
#      then tools/torch_pose_bench.py on the same GPU (PyTorch must be installed);
#   3. configs/synthetic_cuda.json (DY-ResNet-18, 256x192, 2085 iterations) trained on the GPU
#      with nvidia-smi sampling memory every second, then its checkpoint scored by the CPU-only
#      build and by the CUDA build (the two JSON files must be equal).
#
# Usage: tools/cuda_check.sh CUDA_DYPOSE CUDA_TEST_BINARY CPU_DYPOSE [OUT_DIR]
#   CUDA_DYPOSE       dypose built with --features cuda (e.g. cross-built, README "CUDA")
#   CUDA_TEST_BINARY  target/.../deps/cuda_matches_cpu-* from the same build
#   CPU_DYPOSE        dypose built without CUDA
#   OUT_DIR           logs, the run, nvidia-smi samples (default runs/cuda_check; must not hold
#                     an earlier run: nothing is overwritten)
# Run from anywhere; it works in the repository root. The CUDA 13 libraries must be findable
# (LD_LIBRARY_PATH, see the README), and dfdx's headers must be at the build path baked into
# the binary.
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n '2,20p' "$0"; exit 2; }
B=$(realpath "$1"); T=$(realpath "$2"); C=$(realpath "$3")
cd "$(dirname "$0")/.."
OUT=${4:-runs/cuda_check}
mkdir -p "$OUT"
RUN=$OUT/train

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"

echo "== 1. CUDA against the CPU"
"$T" --test-threads 1 --nocapture 2>&1 | tee "$OUT/cuda_matches_cpu.log"

echo "== 2. speed against PyTorch"
for cfg in dy_resnet18 dy_mobilenetv2; do
    for b in 32 64; do
        "$B" bench model --config "configs/${cfg}_coco.json" --batch "$b" --iters 5 --device cuda
    done
    python3 tools/torch_pose_bench.py --config "configs/${cfg}_coco.json" --batch 32 64 --iters 10
done 2>&1 | tee "$OUT/bench.log"

echo "== 3. a 2085-iteration training run on the GPU"
[[ -d data/synthetic/train ]] || "$B" synth --out data/synthetic
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -l 1 > "$OUT/nvidia_smi.csv" &
SMI=$!
trap 'kill $SMI 2>/dev/null || true' EXIT
"$B" train --config configs/synthetic_cuda.json --device cuda --out "$RUN"
kill $SMI
for dev in cpu cuda; do
    bin=$C
    [[ $dev == cuda ]] && bin=$B
    "$bin" eval --checkpoint "$RUN/last.safetensors" \
        --gt data/synthetic/annotations/person_keypoints_val.json --images data/synthetic/val \
        --device "$dev" --json "$OUT/eval_$dev.json"
done
if cmp -s "$OUT/eval_cpu.json" "$OUT/eval_cuda.json"; then
    echo "the CPU-only build scores the GPU checkpoint exactly as the CUDA build does"
else
    echo "the CPU and CUDA evaluations differ:"; diff "$OUT/eval_cpu.json" "$OUT/eval_cuda.json" || true
fi
echo "logs in $OUT"
