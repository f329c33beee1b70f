#!/usr/bin/env bash
# The main job on the embedded synthetic default, end to end on the CPU:
#   synth -> train (the cleft recipe and the still-frame baseline) -> export bundles -> bench
#   (graded) -> bench of the cleft model's input check on wrong inputs.
# Every step is a `labral` command; override sizes through the environment, e.g.
#   DEMO_PATIENTS=60 DEMO_EPOCHS=2 DEMO_DIFFICULTY=medium bash scripts/demo.sh
# The demo trains the cleft recipe (`experiment=cleft`: CleftNet with the generator's
# auxiliary targets, from scratch) at `hard` and benchmarks on synthetic-graded: every level,
# new patients. The last bench scores synthetic-wrong-input (other views, probe off, rotated,
# still hip, image faults, other joints) with the cleft bundle: how often its input check
# refuses each kind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONSAFEPATH=1

LABRAL=${LABRAL:-.venv/bin/labral}
PYTHON=${PYTHON:-.venv/bin/python}
ROOT=${DEMO_ROOT:-outputs/demo}
DATA=${DEMO_DATA:-data/demo}
PATIENTS=${DEMO_PATIENTS:-320}
EPOCHS=${DEMO_EPOCHS:-}
LEVEL=${DEMO_DIFFICULTY:-hard}
start=$(date +%s)
step() { printf '\n== %s (%ds) ==\n' "$1" $(( $(date +%s) - start )); }

rm -rf "$ROOT"
mkdir -p "$ROOT"

step "1/5 generate the synthetic data set"
$LABRAL synth out="$DATA" difficulty="$LEVEL" ${PATIENTS:+n_patients=$PATIENTS} \
  hydra.run.dir="$ROOT/synth"

for model in cleft still_frame; do
  step "2/5 train $model"
  # the cleft recipe brings its model; the still-frame baseline trains with the demo's sizes
  recipe="experiment=cleft"
  [ "$model" = cleft ] || recipe="experiment=demo model=$model"
  $LABRAL train $recipe data.manifest="$DATA/manifest.jsonl" \
    ${EPOCHS:+trainer.max_epochs=$EPOCHS} trainer.progress=false \
    hydra.run.dir="$ROOT/train_$model"
  step "3/5 export $model"
  $LABRAL export run_dir="$ROOT/train_$model" out="$ROOT/bundles/$model" \
    hydra.run.dir="$ROOT/export_$model"
done

step "4/5 benchmark both bundles on synthetic-graded (every level, new patients)"
$LABRAL bench "bundle=[$ROOT/bundles/cleft,$ROOT/bundles/still_frame]" suite=synthetic-graded \
  hydra.run.dir="$ROOT/bench"

step "5/5 benchmark the cleft bundle's input check on synthetic-wrong-input"
$LABRAL bench bundle="$ROOT/bundles/cleft" suite=synthetic-wrong-input \
  controls=false pointing_game=false hydra.run.dir="$ROOT/bench_wrong_input"

step "summary"
$PYTHON scripts/demo_summary.py "$ROOT" "$(( $(date +%s) - start ))"
