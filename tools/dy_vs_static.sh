#!/usr/bin/env bash
# Dynamic vs static convolution on the synthetic task at equal multiply-adds.
#
# Trains the quickstart schedule (configs/quickstart.json: 7 epochs, 3000 images, 128x96) for
#   dy      DY-ResNet-10 x0.25, dynamic backbone and head (K = 4), 64 head channels: 39.47 M MAdds
#   static  ResNet-10 x0.25, static, 68 head channels (widened so the MAdds match): 39.34 M MAdds
# with seeds 0, 1, 2 (model init, sample order and augmentation all follow the seed), then prints
# a markdown table of the final val AP (GT boxes) per seed, mean and standard deviation.
#
# Usage: tools/dy_vs_static.sh [RUN_ROOT]        (default runs/dy_vs_static; ~45 min on 2 cores)
#        DYPOSE=/path/to/dypose tools/dy_vs_static.sh   to use a given binary
# Runs that already finished (their metrics.csv has a val AP on the last line) are not repeated.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${1:-runs/dy_vs_static}
SEEDS=${SEEDS:-"0 1 2"}
if [[ -z "${DYPOSE:-}" ]]; then
    cargo build --release --locked
    DYPOSE=target/release/dypose
fi

if [[ ! -f data/synthetic/annotations/person_keypoints_val.json ]]; then
    "$DYPOSE" synth --out data/synthetic --train 3000 --val 300
fi

final_ap() { # the val AP on the last line of a run's metrics.csv, or nothing
    [[ -f "$1/metrics.csv" ]] && tail -n 1 "$1/metrics.csv" | cut -d, -f7
}

declare -A SETS=(
    [dy]=""
    [static]="--set model.arch=resnet10 --set model.head_channels=68"
)
for seed in $SEEDS; do
    for model in dy static; do
        run="$ROOT/${model}_seed$seed"
        if [[ -n "$(final_ap "$run")" ]]; then continue; fi
        resume=()
        [[ -f "$run/last.safetensors" ]] && resume=(--resume)
        # shellcheck disable=SC2086
        "$DYPOSE" train --config configs/quickstart.json --out "$run" "${resume[@]}" \
            --set seed=$seed ${SETS[$model]}
    done
done

echo
echo "| model | MAdds | params | $(for s in $SEEDS; do printf 'seed %s | ' "$s"; done)mean ± sd |"
echo "|---|---|---|$(for _ in $SEEDS; do printf -- '---|'; done)---|"
for model in dy static; do
    # shellcheck disable=SC2086
    info=$("$DYPOSE" info --config configs/quickstart.json ${SETS[$model]} | tail -n 1)
    aps=()
    for seed in $SEEDS; do aps+=("$(final_ap "$ROOT/${model}_seed$seed")"); done
    python3 - "$model" "$info" "${aps[@]}" <<'EOF'
import json, statistics, sys
model, info, aps = sys.argv[1], json.loads(sys.argv[2]), [float(a) for a in sys.argv[3:]]
sd = statistics.stdev(aps) if len(aps) > 1 else 0.0
cells = " | ".join(f"{a:.3f}" for a in aps)
print(f"| {model} | {info['madds'] / 1e6:.2f} M | {info['params'] / 1e6:.3f} M | {cells} | "
      f"{statistics.mean(aps):.3f} ± {sd:.3f} |")
EOF
done
