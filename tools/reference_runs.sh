#!/usr/bin/env bash
# The three reference trainings (pose quickstart, detector quickstart, pretraining example) with
# one thread, so that two builds can be compared file for file:
#   tools/reference_runs.sh DYPOSE_BINARY WORK_DIR
#   python3 tools/compare_runs.py A/runs/quickstart B/runs/quickstart   (and the two others)
# About 40 minutes on one core. Writes under WORK_DIR only (data/, runs/). WORK_DIR is a checkout
# of the commit the binary was built from (configs/pretrain_synthetic.json changed its layout when
# the training core was unified: an older binary needs its own checkout, e.g. 34fb539).
set -euo pipefail
bin=$(realpath "$1"); cd "$2"
export RAYON_NUM_THREADS=1
"$bin" quickstart --force
"$bin" quickstart --detector --force
[ -d data/shapes/train ] || "$bin" synth --classify --out data/shapes --train 5000 --val 500
rm -rf runs/pretrain_synthetic
"$bin" pretrain --config configs/pretrain_synthetic.json
