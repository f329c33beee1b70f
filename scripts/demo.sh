#!/usr/bin/env bash
# The main job on the embedded synthetic default, end to end on the CPU:
#   synth -> train (the cleft recipe) -> export the bundle -> bench
#   (graded) -> bench of the cleft model's input check on wrong inputs.
# Every step is a `labral` command; override sizes through the environment, e.g.
#   DEMO_PATIENTS=60 DEMO_EPOCHS=2 DEMO_LEVELS=[medium] bash scripts/demo.sh
# The demo trains a smaller version of the cleft recipe (`experiment=cleft`: CleftNet with the
# generator's auxiliary targets, from scratch; fewer patients and epochs than
# scripts/cleft_recipe.sh, so the demo fits in 10 minutes on 2 cores) on a set spanning the
# four levels, and benchmarks on synthetic-graded: every level, new patients. The last bench
# scores synthetic-wrong-input (other views, probe off, rotated, still hip, image faults,
# other joints) with the cleft bundle: how often its input check refuses each kind.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONSAFEPATH=1

LABRAL=${LABRAL:-.venv/bin/labral}
PYTHON=${PYTHON:-.venv/bin/python}
ROOT=${DEMO_ROOT:-outputs/demo}
DATA=${DEMO_DATA:-data/demo}
PATIENTS=${DEMO_PATIENTS:-180}
EPOCHS=${DEMO_EPOCHS:-6}
LEVELS=${DEMO_LEVELS:-[easy,medium,hard,expert]}
start=$(date +%s)
step() { printf '\n== %s (%ds) ==\n' "$1" $(( $(date +%s) - start )); }

rm -rf "$ROOT"
mkdir -p "$ROOT"

step "1/5 generate the synthetic data set"
$LABRAL synth out="$DATA" levels="$LEVELS" n_patients="$PATIENTS" \
  hydra.run.dir="$ROOT/synth"

# the nulls the summary compares with are the shortcut study's (docs/shortcut_study.json):
# timing detectors given the cleft and the loading, stronger than a still-frame net
# (`model=still_frame`, trained and benchmarked by scripts/graded.sh)
step "2/5 train the cleft recipe"
$LABRAL train experiment=cleft trainer.max_epochs="$EPOCHS" data.manifest="$DATA/manifest.jsonl" \
  trainer.progress=false hydra.run.dir="$ROOT/train_cleft"
step "3/5 export it"
$LABRAL export run_dir="$ROOT/train_cleft" out="$ROOT/bundles/cleft" \
  hydra.run.dir="$ROOT/export_cleft"

step "4/5 benchmark it on synthetic-graded (every level, new patients)"
$LABRAL bench bundle="$ROOT/bundles/cleft" suite=synthetic-graded \
  hydra.run.dir="$ROOT/bench"

step "5/5 benchmark the cleft bundle's input check on synthetic-wrong-input"
$LABRAL bench bundle="$ROOT/bundles/cleft" suite=synthetic-wrong-input \
  controls=false pointing_game=false hydra.run.dir="$ROOT/bench_wrong_input"

step "summary"
$PYTHON scripts/demo_summary.py "$ROOT" "$(( $(date +%s) - start ))"
