"""The table of named mutations that scripts/mutation_smoke.py applies: for each, what it
breaks, its edits of the product source and the tests that must catch it. Data only; the
runner (copying the tree, applying, running pytest, reporting) is mutation_smoke.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (exact text, must occur exactly once) by ``new`` in ``path``."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "optimizer-step-noop",
        "the optimizer never steps",
        (Edit("train/loop.py", "    optimizer.step()\n", "    pass\n"),),
        ("tests/train/test_train_learning.py",),
    ),
    Mutation(
        "rng-restore-removed",
        "resume does not restore the RNG state of the checkpoint",
        (
            Edit(
                "train/train_state.py",
                '    restore_rng_state(ckpt["rng"])\n',
                "    pass\n",
            ),
        ),
        ("tests/train/test_resume_kill.py",),
    ),
    Mutation(
        "rng-restore-scrambled",
        "resume reseeds every RNG instead of restoring the checkpoint's state",
        (
            Edit(
                "train/train_state.py",
                '    restore_rng_state(ckpt["rng"])\n',
                "    __import__('labral.train.parts').train.parts.seed_everything(1235)\n",
            ),
        ),
        ("tests/train/test_resume_kill.py",),
    ),
    Mutation(
        "ddp-unwrapped",
        "DDP ranks train without DistributedDataParallel (no gradient all-reduce)",
        (
            Edit(
                "train/parts.py",
                "model = torch.nn.parallel.DistributedDataParallel(raw_model, device_ids=ids)",
                "model = raw_model",
            ),
        ),
        ("tests/train/test_ddp.py",),
    ),
    Mutation(
        "ddp-rank-ignored",
        "every DDP rank draws the whole epoch instead of its share",
        (
            Edit(
                "train/distributed.py",
                "return iter(self.order()[self.rank :: self.world_size].tolist())",
                "return iter(self.order()[: self.per_rank].tolist())",
            ),
        ),
        ("tests/train/test_ddp.py",),
    ),
    Mutation(
        "accumulation-ignored",
        "the optimizer steps after every micro-batch whatever accumulate_grad_batches says",
        (
            Edit(
                "train/loop.py",
                "return (index + 1) % accum_steps == 0 or (",
                "return True or (",
            ),
        ),
        (
            "tests/train/test_train_learning.py"
            "::test_gradient_accumulation_sets_the_optimizer_step_count",
        ),
    ),
    Mutation(
        "class-weight-ignored",
        "data.sampling=class_weight leaves the positive weight at 1",
        (
            Edit(
                "train/command.py",
                'positive_weight(datasets["train"].labels) if batches.sampling == "class_weight"',
                "1.0 if True",
            ),
        ),
        ("tests/train/test_train_learning.py::test_class_weighting_sets_the_positive_weight",),
    ),
    Mutation(
        "temperature-ignored",
        "calibrated_probability (bundle, bench, service, training) leaves out the temperature",
        (
            Edit(
                "labral/bundle.py",
                "scaled = np.asarray(logits, dtype=np.float64) / float(temperature)",
                "scaled = np.asarray(logits, dtype=np.float64)",
            ),
        ),
        (
            "tests/test_bundle.py",
            "tests/test_scoring.py",
            "tests/train/test_finalize.py",
            "tests/train/test_export_from_training.py",
        ),
    ),
    Mutation(
        "divergence-unchecked",
        "a NaN loss or logit no longer stops training",
        (Edit("train/loop.py", "    if what is not None:\n", "    if False:\n"),),
        ("tests/train/test_divergence.py",),
    ),
    Mutation(
        "temperature-ignored-test-metrics",
        "training scores its test split without the fitted temperature",
        (
            Edit(
                "train/finalize.py",
                "calibrated_probability(test_logits, temperature)",
                "calibrated_probability(test_logits, 1.0)",
            ),
        ),
        ("tests/train/test_finalize.py",),
    ),
    Mutation(
        "threshold-ignored",
        "decide (bundle, bench, service) decides at 0.5 instead of the bundle's threshold",
        (
            Edit(
                "labral/bundle.py",
                "    return decision(probability, threshold)\n",
                "    return decision(probability, 0.5)\n",
            ),
        ),
        (
            "tests/test_bundle.py",
            "tests/test_scoring.py",
            "tests/train/test_export_from_training.py",
        ),
    ),
    Mutation(
        "threshold-ignored-test-metrics",
        "training's test metrics decide at 0.5 instead of the fitted threshold",
        (
            Edit(
                "train/finalize.py",
                "calibrated_probability(test_logits, temperature), threshold)",
                "calibrated_probability(test_logits, temperature))",
            ),
        ),
        ("tests/train/test_finalize.py",),
    ),
    Mutation(
        "relevance-zeroed",
        "normalise_relevance (bundle, bench, service) returns all-zero temporal relevance",
        (
            Edit(
                "labral/bundle.py",
                "    return rel / np.where(top > 0, top, 1.0)\n",
                "    return rel * 0\n",
            ),
        ),
        ("tests/test_bundle.py", "tests/test_scoring.py"),
    ),
    Mutation(
        "patient-split-ignored",
        "assign_splits deals out clips, so one patient's clips land in several splits",
        (
            Edit(
                "datasets/manifests/splits.py",
                'out = [{**record, "split": chosen[str(record["patient"])]} for record in records]',
                'out = [{**record, "split": list(chosen.values())[i % len(chosen)]}'
                " for i, record in enumerate(records)]",
            ),
        ),
        (
            "tests/datasets/test_splits.py",
            "tests/train/test_train_data.py::test_rows_without_a_split_are_assigned_one_by_patient",
        ),
    ),
    Mutation(
        "leakage-check-ignored",
        "a patient found in two splits is no longer refused",
        (
            Edit(
                "datasets/manifests/splits.py",
                "    splits_of: dict[str, set[str]] = defaultdict(set)\n",
                "    return\n    splits_of: dict[str, set[str]] = defaultdict(set)\n",
            ),
        ),
        ("tests/datasets/test_splits.py",),
    ),
    Mutation(
        "input-check-skipped",
        "the scorer never runs the bundle's input check (every clip scored)",
        (
            Edit(
                "labral/scoring.py",
                "        return self.bundle.input_check.assess(clip)\n",
                "        return unchecked()\n",
            ),
        ),
        ("tests/input_check/test_rules.py", "tests/serve/test_not_assessable.py"),
    ),
    Mutation(
        "manoeuvre-rule-ignored",
        "a still hip passes: the no_manoeuvre score never exceeds its threshold",
        (
            Edit(
                "labral/input_check/check.py",
                '"no_manoeuvre": 1.0 - stats["motion"] / t["min_motion"],',
                '"no_manoeuvre": -1.0,',
            ),
        ),
        ("tests/input_check/test_rules.py",),
    ),
    Mutation(
        "check-failure-scores",
        "a check that raises lets the clip be scored instead of refusing it",
        (
            Edit(
                "labral/input_check/check.py",
                "            return check_failed(exc)\n",
                "            return CheckVerdict()\n",
            ),
        ),
        ("tests/input_check/test_rules.py",),
    ),
    Mutation(
        "ood-ignored",
        "the input check's out-of-distribution detector never scores a clip",
        (
            Edit(
                "labral/input_check/check.py",
                '"out_of_distribution": measured.ood_distance,',
                '"out_of_distribution": 0.0,',
            ),
        ),
        ("tests/input_check/test_fitted.py",),
    ),
    Mutation(
        "net-benefit-no-odds",
        "decision curves forget the threshold odds t / (1 - t) that weigh false positives",
        (
            Edit(
                "bench/decision_curves.py",
                "    return sens * prevalence - (1 - spec) * (1 - prevalence) * t / (1 - t)\n",
                "    return sens * prevalence - (1 - spec) * (1 - prevalence) * t\n",
            ),
        ),
        ("tests/bench/test_decision_curves.py",),
    ),
    Mutation(
        "auxiliary-ignored",
        "training forgets the generator's auxiliary targets (the classification loss alone)",
        (
            Edit(
                "train/auxiliary.py",
                "        if weight:\n            total = total + weight * loss\n",
                "        if weight:\n            total = total + 0.0 * loss\n",
            ),
        ),
        ("tests/train/test_auxiliary.py",),
    ),
    Mutation(
        "attention-untaught",
        "the attention target is a uniform spread instead of the frames with fluid",
        (
            Edit(
                "train/auxiliary.py",
                "    target = extent[has_fluid] / frames[has_fluid, None]\n",
                "    target = torch.ones_like(extent[has_fluid]) / extent.shape[1]\n",
            ),
        ),
        ("tests/train/test_auxiliary.py",),
    ),
    Mutation(
        "motionless-is-original",
        "the bench's motionless control scores the original clip",
        (
            Edit(
                "bench/perturb.py",
                "    return _with_frames(clip, np.repeat(middle[None], clip.num_frames, axis=0))\n",
                "    return _with_frames(clip, clip.frames)\n",
            ),
        ),
        ("tests/bench/test_perturb_suites.py",),
    ),
    Mutation(
        "levels-ignored",
        "a mixed-level data set draws every patient at the default level",
        (
            Edit(
                "datasets/synth/dataset.py",
                "        result.append(settings.levels[seen[split] % len(settings.levels)])\n",
                "        result.append(settings.difficulty.level)\n",
            ),
        ),
        ("tests/datasets/synth/test_dataset.py",),
    ),
    Mutation(
        "group-budget-pooled",
        "the input check holds every level's calibration clips to the pooled budget",
        (
            Edit(
                "labral/input_check/fit.py",
                "worst_group <= settings.group_false_refusal)",
                "worst_group <= settings.false_refusal)",
            ),
        ),
        ("tests/input_check/test_calibration.py",),
    ),
    Mutation(
        "copies-unchecked",
        "the order controls' copies skip the input check",
        (
            Edit(
                "bench/controls.py",
                "            check=True,  # a copy a route would refuse is reported as refused\n",
                "            check=False,\n",
            ),
        ),
        ("tests/bench/test_check_passes.py",),
    ),
    Mutation(
        "repeat-level-unscaled",
        "the fast repeated-frame rule compares a sum of changes with a per-pixel level",
        (
            Edit(
                "labral/input_check/features.py",
                "change < REPEAT_LEVEL * lattice.shape[1]",
                "change < REPEAT_LEVEL",
            ),
        ),
        ("tests/input_check/test_features.py",),
    ),
    Mutation(
        "motion-not-detrended",
        "the motion score keeps the probe's drift (no straight line taken out)",
        (
            Edit(
                "labral/input_check/features.py",
                "np.eye(count) - 1.0 / count - np.outer(t, t) / (t @ t)",
                "np.eye(count) - 1.0 / count",
            ),
        ),
        ("tests/input_check/test_features.py",),
    ),
    Mutation(
        "ssl-reversal-not-negative",
        "labral pretrain's loss never shows a clip's reversal as a negative",
        (
            Edit(
                "train/pretrain.py",
                "else torch.cat([twin, reversed_first])",
                "else twin",
            ),
        ),
        ("tests/train/test_pretrain.py",),
    ),
    Mutation(
        "curve-resume-ignores-settings",
        "labral curve reuses an earlier curve.json's points whatever their settings",
        (
            Edit(
                "train/curve_resume.py",
                ' if p["arm"] in same}',
                "}",
            ),
        ),
        ("tests/train/test_curve.py",),
    ),
)
