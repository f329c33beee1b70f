#!/usr/bin/env bash
# The README's model comparison on synthetic-graded, end to end on the CPU (about two hours on
# 2 idle cores): the cleft recipe in full (scripts/cleft_recipe.sh: two seeds from scratch on
# a training set spanning the levels; the demo trains a smaller version), then synthetic
# training data at three levels -> the compact net trained as a curriculum (easy, then medium from it, then hard from that), a second seed of the medium
# recipe, torchvision's r3d_18 at 16 x 48 x 48 on easy (the curriculum's first stage), the
# still-frame net and the handcrafted timing feature (3 seeds) on medium ->
# bundles -> one `labral bench` over all of them. Outputs under outputs/graded/.
#   bash scripts/graded.sh            # everything
#   SKIP_TRAIN=1 bash scripts/graded.sh   # only the benchmark, from the bundles already there
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONSAFEPATH=1
L=${LABRAL:-.venv/bin/labral}
PY=${PYTHON:-.venv/bin/python}
G=${GRADED_ROOT:-outputs/graded}
D=${GRADED_DATA:-data/graded}
mkdir -p "$G"

train() {  # train <run name> <overrides...>
  local name=$1; shift
  $L train trainer.progress=false data.batch_size=8 "$@" hydra.run.dir="$G/train_$name"
}
export_bundle() {  # export_bundle <run name> <bundle folder> <model name>
  $L export run_dir="$G/train_$1" out="$G/bundles/$2" model_name="$3" hydra.run.dir="$G/export_$2"
}

if [ -z "${SKIP_TRAIN:-}" ]; then
  CLEFT_BENCH=0 CLEFT_ROOT="$G/cleft" CLEFT_DATA="$D/cleft" LABRAL="$L" PYTHON="$PY" \
    bash scripts/cleft_recipe.sh
  # each stage's data from its own seed, so each stage brings new patients (before, medium
  # and hard both drew seed 11: the hard stage fine-tuned on medium's patients again)
  synth() {  # synth <level> <patients> <seed>
    $L synth out="$D/$1" difficulty="$1" n_patients="$2" seed="$3" progress=false \
      hydra.run.dir="$G/synth_$1"
  }
  synth easy 220 13
  synth medium 300 11
  synth hard 300 12
  medium="data.manifest=$D/medium/manifest.jsonl"
  train compact_easy_s1 experiment=demo model=compact data.manifest="$D/easy/manifest.jsonl" seed=1
  finetune="model=compact optim.lr=0.001 trainer.max_epochs=7 trainer.early_stopping_patience=3"
  for seed in 1 2; do
    train compact_medium_ft_s$seed $finetune "$medium" seed=$seed \
      model.init_weights="$G/train_compact_easy_s1/checkpoints/best.pt"
  done
  train compact_hard_ft_s1 $finetune data.manifest="$D/hard/manifest.jsonl" seed=1 \
    model.init_weights="$G/train_compact_medium_ft_s1/checkpoints/best.pt"
  train still_medium_s1 model=still_frame "$medium" trainer.max_epochs=8 \
    trainer.early_stopping_patience=3 seed=1
  # a torchvision video ResNet at a size that trains on 2 cores: r3d_18 on 16 x 48 x 48 input,
  # the compact net's first stage (it stayed at chance there, so it gets no medium stage)
  train r3d_easy_s1 experiment=demo model=r3d_18 "transforms.eval.size=[48,48]" \
    data.manifest="$D/easy/manifest.jsonl" seed=1
  for seed in 1 2 3; do
    train timing_medium_s$seed model=timing_feature optim.lr=0.01 "$medium" \
      trainer.max_epochs=10 trainer.early_stopping_patience=4 seed=$seed
  done
  # one model name per recipe: bundles of one recipe are replicates (mean +- SD)
  export_bundle compact_medium_ft_s1 compact compact-medium
  export_bundle compact_medium_ft_s2 compact_s2 compact-medium
  export_bundle compact_hard_ft_s1 compact_hard compact-hard
  export_bundle compact_easy_s1 compact_easy compact-easy
  export_bundle still_medium_s1 still_frame still-frame
  export_bundle r3d_easy_s1 r3d_18 r3d_18-easy
  for seed in 1 2 3; do export_bundle timing_medium_s$seed timing_s$seed timing-feature; done
fi

B="$G/bundles"
C="$G/cleft/bundles"
$L bench "bundle=[$C/cleft_s1,$C/cleft_s2,$B/compact,$B/compact_s2,$B/compact_hard,$B/compact_easy,$B/r3d_18,$B/still_frame,$B/timing_s1,$B/timing_s2,$B/timing_s3]" \
  suite=synthetic-graded out="$G/bench" hydra.run.dir="$G/bench_run"
$PY -m labral.bench.markdown "$G/bench/results.json"
