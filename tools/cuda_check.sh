#!/usr/bin/env bash
# The fast CUDA path (cuDNN convolutions, NVRTC kernels; feature `cudnn`) checked and measured
# in one command.
#
# Here, without a GPU:   tools/cuda_check.sh --dry-run [OUT_DIR]
#   - cross-builds dypose with --features cuda,cudnn,nccl,mpi (NCCL's and MPI's libraries linked: the
#     data-parallel GPU build), then with --features cuda,cudnn,nccl (and its test
#     binaries) into target/cuda, strips what the GPU run needs into target/cuda-check/bin (carry
#     that folder), and builds the CPU-only dypose beside it;
#   - compiles every NVRTC kernel to PTX with the CUDA 13 wheels' NVRTC and assembles it for
#     sm_90 with ptxas (register and shared-memory use, no spills);
#   - runs what needs no GPU: the cuDNN descriptors against the CPU path, the fast ops' first-use
#     check with a forced mismatch, predict's pipeline, and the CPU side of predict (at least 150
#     crops/s per core).
# On a CUDA 13 host with one GPU:   tools/cuda_check.sh [OUT_DIR]   (about 6 minutes on an H100)
#   1. CUDA against the CPU (cuda_matches_cpu): every fast op kind's first-use check, a training
#      step of DY-ResNet-18 and DY-MobileNetV2 on both CUDA paths, inference at τ 30 and 1;
#   2. `bench model --device cuda` beside tools/torch_pose_bench.py (when PyTorch is there):
#      DY-ResNet-18, DY-MobileNetV2 and their static twins, batch 32 and 64, training and
#      inference img/s and the ratio to PyTorch (fp32, TF32 off);
#   3. kernel launches per training step, fast and generic path (when the host has nsys);
#   4. `bench predict --device cuda`, end to end, DY-ResNet-18: at least 1,000 crops/s;
#   5. a 973-iteration synthetic training run on the GPU (7 epochs), and its validation AP;
#   6. NCCL with one rank: a training step through the collective path (as one rank launched by
#      mpirun) against a plain one, SGD, equal within 1e-5 (with the plain path's run-to-run
#      difference beside it).
# It prints one summary table and exits non-zero on any failed check or missed floor.
#
# Env: CUDA_CROSS_BUILD (default ../shared/tools/cuda-cross-build.sh), CUDA13_PREFIX
#      (/usr/local/cuda). On the GPU host the CUDA 13 libraries, libcudnn.so.9 and libnccl.so.2
#      must be on LD_LIBRARY_PATH (see the book's CUDA chapters; a Python venv's nvidia/cudnn/lib
#      and nvidia/nccl/lib are added when found).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ ${1:-} == --dry-run ]]; then DRY=1; shift; fi
OUT=${1:-runs/cuda_check}
BIN=target/cuda-check/bin
PREFIX=${CUDA13_PREFIX:-/usr/local/cuda}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.tsv
: > "$SUMMARY"
FAILED=0
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$SUMMARY"; [[ $2 == pass || $2 == info ]] || FAILED=1; }
# The last line of a command's output that is a JSON object, and a field of it (python3).
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
last_json() { grep '^{' "$1" | tail -n 1; }

if [[ $DRY == 1 ]]; then
    XB=${CUDA_CROSS_BUILD:-../shared/tools/cuda-cross-build.sh}
    echo "== cross-build (cuda, cudnn, nccl, mpi) into target/cuda: the data-parallel GPU build links"
    CARGO_TARGET_DIR=target/cuda "$XB" --features cuda,cudnn,nccl,mpi --bins 2>&1 | tee "$OUT/cross_build_mpi.log" | tail -n 12
    grep -q 'libnccl.so.2' "$OUT/cross_build_mpi.log" && grep -q 'libmpi.so' "$OUT/cross_build_mpi.log" \
        && row "cross-build --features cuda,cudnn,nccl,mpi links libnccl.so.2 and libmpi" pass "" \
        || row "cross-build --features cuda,cudnn,nccl,mpi links libnccl.so.2 and libmpi" FAIL "see $OUT/cross_build_mpi.log"
    echo "== cross-build (cuda, cudnn, nccl) into target/cuda, for the GPU run"
    CARGO_TARGET_DIR=target/cuda "$XB" --features cuda,cudnn,nccl --bins --tests 2>&1 | tee "$OUT/cross_build.log" | tail -n 12
    grep -q 'libcudnn.so.9' "$OUT/cross_build.log" && grep -q 'libnccl.so.2' "$OUT/cross_build.log" \
        && grep -q 'CUDA symbols resolve' "$OUT/cross_build.log" \
        && row "cross-build links libcudnn.so.9 and libnccl.so.2, every CUDA symbol resolves" pass "" \
        || row "cross-build links libcudnn.so.9 and libnccl.so.2, every CUDA symbol resolves" FAIL "see $OUT/cross_build.log"
    newest() { ls -t target/cuda/release/deps/"$1"-* | grep -v '\.d$' | head -n 1; }
    LIBTEST=$(for b in $(ls -t target/cuda/release/deps/dypose-* | grep -v '\.d$'); do
        grep -q every_kernel_compiles_to_ptx "$b" && { echo "$b"; break; }; done)
    echo "== the CPU-only build"
    cargo build --release --quiet
    mkdir -p "$BIN"
    strip -o "$BIN/dypose" target/cuda/release/dypose
    strip -o "$BIN/cuda_matches_cpu" "$(newest cuda_matches_cpu)"
    strip -o "$BIN/dypose-cpu" target/release/dypose
    row "stripped binaries for the GPU run" info "$(du -sh "$BIN" | cut -f1) in $BIN"

    echo "== NVRTC: every kernel to PTX, ptxas for sm_90"
    STUB=$(mktemp -d)
    ln -sf "$PREFIX/lib64/stubs/libcuda.so" "$STUB/libcuda.so.1" # nothing calls the driver
    if LD_LIBRARY_PATH=$PREFIX/lib64:$STUB DYPOSE_PTX_OUT=$OUT/fast.ptx "$LIBTEST" --ignored every_kernel_compiles_to_ptx \
        > "$OUT/nvrtc.log" 2>&1 && "$PREFIX/bin/ptxas" -arch=sm_90 -v "$OUT/fast.ptx" -o "$OUT/fast.cubin" > "$OUT/ptxas.log" 2>&1; then
        spills=$(grep -c ' [1-9][0-9]* bytes spill' "$OUT/ptxas.log" || true)
        entries=$(grep -c 'Compiling entry function' "$OUT/ptxas.log")
        [[ $spills == 0 ]] && row "NVRTC kernels compile; ptxas sm_90" pass "$entries kernels, no spills" \
            || row "NVRTC kernels compile; ptxas sm_90" FAIL "$spills kernels spill registers"
    else
        row "NVRTC kernels compile; ptxas sm_90" FAIL "see $OUT/nvrtc.log, $OUT/ptxas.log"
    fi
    rm -rf "$STUB"

    echo "== checks without a GPU"
    cargo test --release --quiet --lib -- cudnn_plan fast_check predictor cuda::sniff > "$OUT/cpu_tests.log" 2>&1 \
        && row "cuDNN descriptors = CPU path; fast-op check and fallback; predict pipeline" pass "$(grep -o '[0-9]* passed' "$OUT/cpu_tests.log" | head -n 1)" \
        || row "cuDNN descriptors = CPU path; fast-op check and fallback; predict pipeline" FAIL "see $OUT/cpu_tests.log"
    target/release/dypose bench predict --config configs/dy_resnet18_coco.json --no-network --crops 512 \
        > "$OUT/predict_cpu_side.log" 2>&1
    j=$(last_json "$OUT/predict_cpu_side.log")
    per_core=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(round(j["crops_per_s_flip"] / j["threads"], 1))' "$j")
    python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 150)' "$per_core" \
        && row "predict's CPU side, flip test (>= 150 crops/s/core)" pass "$per_core crops/s/core" \
        || row "predict's CPU side, flip test (>= 150 crops/s/core)" FAIL "$per_core crops/s/core"
    echo "GPU steps (run without --dry-run on the GPU host, with $BIN and this repository):"
    sed -n '/^# On a CUDA 13 host/,/^# It prints/p' "$0" | sed 's/^# /  /'
else
    [[ -x $BIN/dypose && -x $BIN/cuda_matches_cpu && -x $BIN/dypose-cpu ]] \
        || { echo "run tools/cuda_check.sh --dry-run first (it builds $BIN)" >&2; exit 2; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
    # cuDNN's and NCCL's libraries from a Python venv (PyTorch's wheels), when the path lacks them.
    for lib in cudnn nccl; do
        dir=$(python3 -c "import importlib.util as u, os; s=u.find_spec('nvidia.$lib'); print(os.path.join(list(s.submodule_search_locations)[0], 'lib') if s else '')" 2>/dev/null || true)
        [[ -n $dir && -d $dir ]] && export LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    done

    echo "== 1. CUDA against the CPU"
    "$BIN/cuda_matches_cpu" --test-threads 1 --nocapture > "$OUT/cuda_matches_cpu.log" 2>&1 \
        && row "CUDA = CPU (fast-op checks, training steps, τ 30 and 1)" pass "" \
        || row "CUDA = CPU (fast-op checks, training steps, τ 30 and 1)" FAIL "see $OUT/cuda_matches_cpu.log"

    echo "== 2. speed against PyTorch"
    HAVE_TORCH=0
    python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null && HAVE_TORCH=1
    for cfg in dy_resnet18 resnet18 dy_mobilenetv2 mobilenetv2; do
        [[ $HAVE_TORCH == 1 ]] && python3 tools/torch_pose_bench.py --config "configs/${cfg}_coco.json" --batch 32 64 \
            --iters 10 --device cuda > "$OUT/torch_$cfg.log" 2>&1
        for b in 32 64; do
            "$BIN/dypose" bench model --config "configs/${cfg}_coco.json" --batch "$b" --iters 5 --device cuda \
                > "$OUT/bench_${cfg}_$b.log" 2>&1
            j=$(last_json "$OUT/bench_${cfg}_$b.log")
            train=$(field "$j" training_img_per_s); infer=$(field "$j" inference_img_per_s)
            if [[ $HAVE_TORCH == 1 ]]; then
                t=$(last_json "$OUT/torch_$cfg.log")
                ratio=$(python3 -c 'import json,sys; r=[x for x in json.loads(sys.argv[1])["rows"] if x["batch"]==int(sys.argv[2])][0]; print("%.2f %.2f" % (float(sys.argv[3])/r["training_img_per_s"], float(sys.argv[4])/r["inference_img_per_s"]))' "$t" "$b" "$train" "$infer")
                read -r tr ir <<< "$ratio"
                python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 0.8)' "$tr" \
                    && row "$cfg batch $b: training >= 0.8x PyTorch" pass "train ${train%.*} img/s (${tr}x), inference ${infer%.*} (${ir}x)" \
                    || row "$cfg batch $b: training >= 0.8x PyTorch" FAIL "train ${train%.*} img/s (${tr}x), inference ${infer%.*} (${ir}x)"
            else
                row "$cfg batch $b" info "train ${train%.*} img/s, inference ${infer%.*} img/s (no PyTorch here: no ratio)"
            fi
        done
    done

    echo "== 3. kernel launches per training step"
    if command -v nsys > /dev/null; then
        for path in fast generic; do
            flag=""; [[ $path == generic ]] && flag=--generic
            nsys profile -o "$OUT/launches_$path" --force-overwrite true --stats=false \
                "$BIN/dypose" bench model --config configs/dy_resnet18_coco.json --batch 32 --iters 1 --device cuda $flag \
                > /dev/null 2>&1 || true
            n=$(nsys stats -r cuda_gpu_kern_sum -f csv "$OUT/launches_$path.nsys-rep" 2>/dev/null \
                | python3 -c 'import csv,sys; print(sum(int(r["Instances"]) for r in csv.DictReader(sys.stdin)))' 2>/dev/null || echo "?")
            row "kernel launches, bench model DY-ResNet-18 ($path path, warm-up + 1 inference + 1 training)" info "$n"
        done
    else
        row "kernel launches per step" info "no nsys on this host"
    fi

    echo "== 4. predict end to end"
    "$BIN/dypose" bench predict --config configs/dy_resnet18_coco.json --crops 2048 --device cuda \
        > "$OUT/predict_cuda.log" 2>&1
    c=$(field "$(last_json "$OUT/predict_cuda.log")" crops_per_s_no_flip)
    python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 1000)' "$c" \
        && row "bench predict --device cuda, DY-ResNet-18 (>= 1000 crops/s)" pass "${c%.*} crops/s" \
        || row "bench predict --device cuda, DY-ResNet-18 (>= 1000 crops/s)" FAIL "${c%.*} crops/s"

    echo "== 5. a 973-iteration training run on the GPU"
    [[ -d data/synthetic/train ]] || "$BIN/dypose-cpu" synth --out data/synthetic > /dev/null
    RUN=$OUT/train
    if "$BIN/dypose" train --config configs/synthetic_cuda.json --device cuda --out "$RUN" \
        --set train.epochs=7 --set train.val_every=7 --set 'train.lr_steps=[5,6]' --set train.temperature.epochs=3 \
        > "$OUT/train.log" 2>&1; then
        ap=$(tail -n 1 "$RUN/metrics.csv" | cut -d, -f7)
        row "973 iterations on the GPU, val AP" pass "$ap"
    else
        row "973 iterations on the GPU" FAIL "see $OUT/train.log"
    fi

    echo "== 6. NCCL with one rank against a plain step"
    [[ -d data/synthetic/train ]] || "$BIN/dypose-cpu" synth --out data/synthetic > /dev/null
    step() { "$BIN/dypose" train --config configs/synthetic_cuda.json --device cuda --out "$OUT/$1" --stop-after 1 \
        --set train.optimizer=sgd --set train.warmup_iters=0 > "$OUT/$1.log" 2>&1; }
    rm -rf "$OUT/plain" "$OUT/plain2" "$OUT/nccl"
    # A process that a launcher started alone takes the collective path (OMPI_COMM_WORLD_SIZE=1
    # says so to a build without MPI): NCCL sums over one rank.
    if step plain && step plain2 && OMPI_COMM_WORLD_SIZE=1 step nccl && grep -q 'summed across ranks by NCCL' "$OUT/nccl.log"; then
        noise=$(python3 tools/compare_checkpoints.py "$OUT/plain/last.safetensors" "$OUT/plain2/last.safetensors" --tolerance 1 | cut -d' ' -f3)
        if python3 tools/compare_checkpoints.py "$OUT/plain/last.safetensors" "$OUT/nccl/last.safetensors" --tolerance 1e-5 > "$OUT/nccl_compare.txt"; then
            row "NCCL, one rank = plain step (1e-5)" pass "$(cut -d' ' -f3 "$OUT/nccl_compare.txt") (plain vs plain: $noise)"
        else
            row "NCCL, one rank = plain step (1e-5)" FAIL "$(cat "$OUT/nccl_compare.txt") (plain vs plain: $noise)"
        fi
    else
        row "NCCL, one rank = plain step" FAIL "see $OUT/plain.log, $OUT/nccl.log"
    fi
    grep '^warning: the fast ' "$OUT"/*.log > "$OUT/fallbacks.txt" || true
    [[ -s $OUT/fallbacks.txt ]] && row "fast ops switched off by their first-use check" FAIL "$(wc -l < "$OUT/fallbacks.txt") (see $OUT/fallbacks.txt)" \
        || row "fast ops switched off by their first-use check" pass "none"
fi

echo
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
echo "logs in $OUT"
exit $FAILED
