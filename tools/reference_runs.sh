#!/usr/bin/env bash
# The three reference trainings (pose quickstart, detector quickstart, pretraining example) with
# one thread, so that two builds can be compared file for file:
#   tools/reference_runs.sh DYPOSE_BINARY WORK_DIR     (WORK_DIR: a checkout of this repository)
#   python3 tools/compare_runs.py A/runs/quickstart B/runs/quickstart   (and the two others)
# About 40 minutes on one core. Writes under WORK_DIR only (data/, runs/).
set -euo pipefail
bin=$(realpath "$1"); cd "$2"
export RAYON_NUM_THREADS=1
"$bin" quickstart --force
"$bin" quickstart --detector --force
[ -d data/shapes/train ] || "$bin" synth --classify --out data/shapes --train 5000 --val 500
rm -rf runs/pretrain_synthetic
"$bin" pretrain --config configs/pretrain_synthetic.json
