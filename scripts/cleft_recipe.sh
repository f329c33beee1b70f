#!/usr/bin/env bash
# The cleft recipe's published figures (docs/cleft_recipe.md), end to end on the CPU (about
# an hour on 2 cores): one training set spanning the four levels (400 patients, levels in
# turn, so the validation split that fits the temperature and threshold spans them too) ->
# the cleft recipe from scratch, two seeds -> bundles -> `labral bench` on synthetic-graded
# (every level, new patients; both seeds as replicates of one model name) -> the paired margin
# over the shortcut study's strongest nulls (benchmarks/null_margin.py) for each seed.
# Outputs under outputs/cleft/. `scripts/graded.sh` runs it with CLEFT_BENCH=0 (train and
# export only) and benchmarks its bundles beside the other models.
#   bash scripts/cleft_recipe.sh
#   EXTRA_BUNDLES=outputs/demo/bundles/still_frame bash scripts/cleft_recipe.sh  # compare
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONSAFEPATH=1
L=${LABRAL:-.venv/bin/labral}
PY=${PYTHON:-.venv/bin/python}
R=${CLEFT_ROOT:-outputs/cleft}
D=${CLEFT_DATA:-data/cleft}
mkdir -p "$R"

$L synth out="$D/mixed" "levels=[easy,medium,hard,expert]" n_patients=400 seed=12 \
  progress=false hydra.run.dir="$R/synth_mixed"
bundles=()
for seed in 1 2; do
  $L train experiment=cleft data.manifest="$D/mixed/manifest.jsonl" trainer.progress=false \
    seed=$seed hydra.run.dir="$R/train_s$seed"
  $L export run_dir="$R/train_s$seed" out="$R/bundles/cleft_s$seed" model_name=cleft \
    hydra.run.dir="$R/export_s$seed"
  bundles+=("$R/bundles/cleft_s$seed")
done
[ "${CLEFT_BENCH:-1}" = 0 ] && exit 0
list=$(IFS=,; echo "${bundles[*]}${EXTRA_BUNDLES:+,$EXTRA_BUNDLES}")
$L bench "bundle=[$list]" suite=synthetic-graded hydra.run.dir="$R/bench"
$PY -m labral.bench.markdown "$R/bench/results.json"
for seed in 1 2; do
  $PY benchmarks/null_margin.py --bundle "$R/bundles/cleft_s$seed" --json "$R/null_margin_s$seed.json"
done
