#!/usr/bin/env bash
# Training throughput on this machine's cores, side by side: one process with all threads
# against N MPI ranks of one thread each (the same global batch), alternating, ROUNDS pairs;
# prints each pair's images/s and the median ratio. Needs a build with --features mpi and Open MPI.
#     tools/mpi_scaling.sh [CONFIG] [ROUNDS] [STEPS]
# CONFIG (default configs/quickstart.json, whose data `dypose quickstart` generates) trains for
# STEPS steps (default 40) per run, from scratch, into temporary run directories.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/quickstart.json}
rounds=${2:-5}
steps=${3:-40}
ranks=$(nproc)
dypose=${DYPOSE:-target/release/dypose}
batch=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['loader']['batch_size'])" "$config")
(( batch % ranks == 0 )) || { echo "batch $batch does not split into $ranks ranks" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rate() { sed -n 's/.*: \([0-9.]*\) images\/s.*/\1/p' | tail -1; }
one() {
    "$dypose" train --config "$config" --out "$tmp/one" --stop-after "$steps" 2>/dev/null | rate
    rm -rf "$tmp/one"
}
many() {
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --bind-to none -np "$ranks" \
        -x RAYON_NUM_THREADS=1 "$dypose" train --config "$config" --out "$tmp/many" --stop-after "$steps" \
        --set loader.batch_size=$((batch / ranks)) --set loader.workers=1 2>/dev/null | rate
    rm -rf "$tmp/many"
}
echo "round  1 process x $ranks threads  $ranks ranks x 1 thread  ratio (images/s)"
ratios=()
for r in $(seq 1 "$rounds"); do
    if (( r % 2 )); then a=$(one); b=$(many); else b=$(many); a=$(one); fi
    ratio=$(python3 -c "print(f'{$b/$a:.3f}')")
    ratios+=("$ratio")
    printf '%5d  %21s  %20s  %s\n' "$r" "$a" "$b" "$ratio"
done
python3 -c "import statistics,sys; v=sorted(map(float,sys.argv[1:])); print(f'median ratio {statistics.median(v):.3f} (range {v[0]:.3f}-{v[-1]:.3f})')" "${ratios[@]}"
