#!/usr/bin/env bash
# The main job on the embedded synthetic default, end to end on the CPU:
#   synth -> train (default model and still-frame baseline) -> export bundles -> bench
#   (graded) -> bench of the default model's input check on wrong inputs.
# Every step is a `labral` command; override sizes through the environment, e.g.
#   DEMO_PATIENTS=60 DEMO_EPOCHS=2 DEMO_DIFFICULTY=medium bash scripts/demo.sh
# The demo trains at the generator level (configs/difficulty/) that trains on 2 CPU cores in
# the demo's time (easy) and benchmarks on synthetic-graded: every level, so the headline is
# not a ceiling (easy is a sanity check; the harder levels tell models apart). The last bench
# scores synthetic-wrong-input (other views, probe off, rotated, still hip, image faults, other
# joints) with the default bundle: how often its input check refuses each kind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONSAFEPATH=1

LABRAL=${LABRAL:-.venv/bin/labral}
PYTHON=${PYTHON:-.venv/bin/python}
ROOT=${DEMO_ROOT:-outputs/demo}
DATA=${DEMO_DATA:-data/demo}
PATIENTS=${DEMO_PATIENTS:-}
EPOCHS=${DEMO_EPOCHS:-}
LEVEL=${DEMO_DIFFICULTY:-easy}
start=$(date +%s)
step() { printf '\n== %s (%ds) ==\n' "$1" $(( $(date +%s) - start )); }

rm -rf "$ROOT"
mkdir -p "$ROOT"

step "1/5 generate the synthetic data set"
$LABRAL synth out="$DATA" difficulty="$LEVEL" ${PATIENTS:+n_patients=$PATIENTS} \
  hydra.run.dir="$ROOT/synth"

for model in compact still_frame; do
  step "2/5 train $model"
  $LABRAL train experiment=demo model="$model" data.manifest="$DATA/manifest.jsonl" \
    ${EPOCHS:+trainer.max_epochs=$EPOCHS} trainer.progress=false \
    hydra.run.dir="$ROOT/train_$model"
  step "3/5 export $model"
  $LABRAL export run_dir="$ROOT/train_$model" out="$ROOT/bundles/$model" \
    hydra.run.dir="$ROOT/export_$model"
done

step "4/5 benchmark both bundles on synthetic-graded (every level, new patients)"
$LABRAL bench "bundle=[$ROOT/bundles/compact,$ROOT/bundles/still_frame]" suite=synthetic-graded \
  hydra.run.dir="$ROOT/bench"

step "5/5 benchmark the default bundle's input check on synthetic-wrong-input"
$LABRAL bench bundle="$ROOT/bundles/compact" suite=synthetic-wrong-input \
  controls=false pointing_game=false hydra.run.dir="$ROOT/bench_wrong_input"

step "summary"
$PYTHON scripts/demo_summary.py "$ROOT" "$(( $(date +%s) - start ))"
