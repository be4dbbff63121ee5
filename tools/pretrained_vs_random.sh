#!/usr/bin/env bash
# A pose model started from a pretrained backbone against one started from random weights, on
# the quickstart schedule (configs/quickstart.json: DY-ResNet-10 x0.25, 7 epochs, 128x96).
#
# Pretrains configs/pretrain_synthetic.json (the same DY-ResNet-10 x0.25 as a 10-class
# classifier on `dypose synth --classify` shapes at 64x64, 6 epochs), then trains the quickstart
# model with model.backbone_checkpoint set to it and without, for seeds 0, 1, 2 (the seed sets
# the head's weights, the sample order and the augmentation), and prints a markdown table of the
# final val AP (GT boxes).
#
# Usage: tools/pretrained_vs_random.sh [RUN_ROOT]    (default runs/pretrained_vs_random; ~50 min
#        on 2 cores). SEEDS="0" for one seed; DYPOSE=/path/to/dypose to use a given binary.
# Runs that already finished are not repeated.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${1:-runs/pretrained_vs_random}
SEEDS=${SEEDS:-"0 1 2"}
if [[ -z "${DYPOSE:-}" ]]; then
    cargo build --release --locked
    DYPOSE=target/release/dypose
fi
[[ -f data/synthetic/annotations/person_keypoints_val.json ]] || "$DYPOSE" synth --out data/synthetic --train 3000 --val 300
[[ -d data/shapes/val ]] || "$DYPOSE" synth --classify --out data/shapes --train 5000 --val 500

final() { # column $2 of the last line of a run's metrics.csv, or nothing
    [[ -f "$1/metrics.csv" ]] && tail -n 1 "$1/metrics.csv" | cut -d, -f"$2"
}

PRE="$ROOT/pretrain"
if [[ -z "$(final "$PRE" 7)" ]]; then
    resume=()
    [[ -f "$PRE/last.safetensors" ]] && resume=(--resume)
    "$DYPOSE" pretrain --config configs/pretrain_synthetic.json --out "$PRE" "${resume[@]}"
fi
BACKBONE="$(cd "$PRE" && pwd)/best.safetensors"

for seed in $SEEDS; do
    for start in random pretrained; do
        run="$ROOT/${start}_seed$seed"
        if [[ -n "$(final "$run" 7)" ]]; then continue; fi
        resume=()
        [[ -f "$run/last.safetensors" ]] && resume=(--resume)
        extra=()
        [[ $start == pretrained ]] && extra=(--set "model.backbone_checkpoint=$BACKBONE")
        "$DYPOSE" train --config configs/quickstart.json --out "$run" "${resume[@]}" --set seed=$seed "${extra[@]}"
    done
done

echo
echo "pretraining: val top-1 $(final "$PRE" 7)"
echo "| backbone | $(for s in $SEEDS; do printf 'seed %s | ' "$s"; done)mean ± sd |"
echo "|---|$(for _ in $SEEDS; do printf -- '---|'; done)---|"
for start in random pretrained; do
    aps=()
    for seed in $SEEDS; do aps+=("$(final "$ROOT/${start}_seed$seed" 7)"); done
    python3 - "$start" "${aps[@]}" <<'PY'
import statistics, sys
start, aps = sys.argv[1], [float(a) for a in sys.argv[2:]]
sd = statistics.stdev(aps) if len(aps) > 1 else 0.0
print(f"| {start} | " + " | ".join(f"{a:.3f}" for a in aps) + f" | {statistics.mean(aps):.3f} ± {sd:.3f} |")
PY
done
