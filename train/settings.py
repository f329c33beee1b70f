"""The settings of ``labral train``, ``labral export`` and ``labral curve``: one typed model
each, the one statement of every key, its type and its default (the :mod:`labral.settings`
style).

``configs/{train,export,curve}.yaml`` list their model's schema first (``train_schema``,
registered by the :mod:`labral.train` package because tests and other commands compose the
train config before they import its command; ``export_schema`` and ``curve_schema``,
registered by :mod:`labral.train.export` and :mod:`labral.train.curve`) and then hold only
config groups and the values that differ; each command validates the composed config into
its model and hands the model on. ``labral train``'s groups built with
``hydra.utils.instantiate`` (:data:`TRAIN_GROUPS`: data, model, optim, ...) stay config
nodes: their keys are the constructors' arguments.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from pydantic import Field

from labral.input_check.settings import InputCheckSettings
from labral.settings import Settings, Text, settings_from_config

TRAIN_SCHEMA = "train_schema"
EXPORT_SCHEMA = "export_schema"
CURVE_SCHEMA = "curve_schema"
#: ``labral train``'s config groups that are not settings: ``_target_`` nodes built with
#: ``hydra.utils.instantiate`` (data, model, optim, scheduler, logger, callbacks), the
#: transform specs and the shared paths
TRAIN_GROUPS = ("paths", "data", "model", "transforms", "optim", "scheduler", "logger", "callbacks")


class TrainerSettings(Settings):
    """How ``labral train`` runs: device, precision, epochs, early stopping
    (``configs/trainer/``: cpu holds these defaults, gpu and ddp what differs)."""

    accelerator: str = Field("cpu", description="cpu | gpu | auto (cuda when available)")
    strategy: str | None = Field(None, description="null | ddp (launched by torchrun)")
    max_epochs: int = 10
    precision: Text = Field("32", description='"32" | bf16 (autocast)')
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    channels_last_3d: bool = False
    compile: bool = Field(False, description="torch.compile the model")
    early_stopping_patience: int = Field(
        4, description="epochs without val AUROC improvement; 0 disables"
    )
    early_stopping_min_delta: float = 0.0
    num_threads: int | None = Field(
        None, description="torch intra-op threads; null = auto: cores / LOCAL_WORLD_SIZE"
    )
    progress: bool = Field(True, description="tqdm bar with loss, clips/s and ETA")


class FinetuneSettings(Settings):
    """``experiment=finetune`` sets these (:mod:`labral.train.finetune`)."""

    freeze_backbone_epochs: int = Field(
        0, description="train only the head for this many first epochs"
    )
    backbone_lr_scale: float = Field(
        1.0, description="backbone learning rate = optim.lr x this (head keeps optim.lr)"
    )


class CvSettings(Settings):
    """``cv.folds=K``: patient-grouped K-fold cross-validation (:mod:`labral.train.cv`)."""

    folds: int = Field(0, description="0: one ordinary run; K >= 3: K runs under fold_<k>")
    seed: int = Field(0, description="which patients go to which fold (not the training seed)")
    bootstrap: int = Field(
        1000, description="patient-bootstrap replicates of the pooled out-of-fold AUROC CI"
    )


class PretrainSettings(Settings):
    """``labral pretrain``'s objective (:mod:`labral.train.pretrain`): temporal contrastive."""

    temperature: float = Field(0.1, gt=0.0, description="InfoNCE softmax temperature")
    projection_dim: int = Field(64, ge=2, description="width of the projection head's output")
    reversed_negatives: bool = Field(
        True,
        description="every clip played backwards is a negative (its own included): the "
        "embedding must tell the direction of time, as fluid's direction tells the sign",
    )
    unlabelled_fraction: float = Field(
        1.0, gt=0.0, le=1.0, description="share of the manifest's clips used (by patient)"
    )


class TrainSettings(Settings):
    """Every setting of ``labral train`` that is not a :data:`TRAIN_GROUPS` node."""

    task_name: str = Field("train", description="recorded in metrics.jsonl's start event")
    seed: int = 1234
    resume: bool = Field(False, description="true: continue from <run dir>/checkpoints/last.pt")
    ckpt_path: Text | None = Field(None, description="or an explicit checkpoints/last.pt")
    optimized_metric: str | None = Field(
        None, description="set by hparams_search (best_val_auroc): run() returns that float"
    )
    calibration: dict[str, Any] = Field(
        default_factory=lambda: {"threshold_rule": {"name": "sensitivity", "target": 0.90}},
        description="threshold_rule fitted on the validation split after training: "
        "sensitivity (largest threshold keeping val sensitivity >= target) | youden | "
        "fixed (+calibration.threshold_rule.value=...)",
    )
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    cv: CvSettings = Field(default_factory=CvSettings)
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)
    pretrain: PretrainSettings = Field(
        default_factory=PretrainSettings,
        description="labral pretrain only: the self-supervised objective (labral.train.pretrain)",
    )
    auxiliary: dict[str, float] | None = Field(
        None,
        description="weights of the auxiliary training targets (heatmap, extent, loading, "
        "scenario, attention; labral.train.auxiliary): null = their defaults for a model with "
        "auxiliary heads (model=cleft), {} = none",
    )


class ExportVerify(Settings):
    """Exported outputs must match the eager model's on synthetic clips."""

    clips: int = Field(4, description="synthetic clips (at least 2 are used)")
    atol: float = Field(1.0e-4, description="largest absolute difference allowed")
    rtol: float = Field(
        1.0e-5,
        description="plus this share of the eager value (relevance can reach tens: float32 "
        "rounding there is above atol alone)",
    )
    seed: int = Field(0, description="seed of the synthetic clips")


class ExportSettings(Settings):
    """Every key of ``labral export``, its type and its default."""

    run_dir: Text | None = Field(
        None, description="a `labral train` run dir (best.pt, calibration)"
    )
    ckpt: Text | None = Field(
        None, description="explicit checkpoint; default <run_dir>/checkpoints/best.pt"
    )
    calibration: Text | None = Field(
        None, description="explicit calibration.json; default <run_dir>/calibration.json"
    )
    require_calibration: bool = Field(
        True, description="false: export without calibration (T = 1, threshold 0.5)"
    )
    out: Text | None = Field(None, description="bundle folder; default <paths.output_dir>/bundle")
    model_name: Text | None = Field(None, description="default labral-<arch or class name>")
    model_version: Text | None = Field(None, description="default <labral version>+epoch<N>")
    formats: list[str] = Field(
        default_factory=lambda: ["torchscript", "onnx", "torch_export"],
        description="model.ts (required) | model.onnx | model.pt2",
    )
    onnx_opset: int | None = Field(None, description="None: labral.runtimes.ONNX_OPSET")
    verify: ExportVerify = Field(default_factory=ExportVerify)
    input_check: InputCheckSettings = Field(default_factory=InputCheckSettings)


class CurveClip(Settings):
    """The generated clips' geometry (the generator's default clip)."""

    frames: int = 32
    height: int = 128
    width: int = 128


class CurveSource(Settings):
    """The pretraining domain: the generator's own ranges at ``difficulty``."""

    n_patients: int = Field(220, description="1-2 hips each (the demo's size)")
    seed: int = 5100000
    difficulty: str = Field("easy", description="generator level (configs/difficulty/)")
    overrides: dict[str, Any] = Field(default_factory=dict)


class CurveTarget(Settings):
    """The new domain: a harder level, every ``overrides`` value outside the generator's
    draws (7-12 MHz, 40-52 mm, gain -3..3 dB, labrum 2.8-4.2 mm), as a real cohort is
    harder than easy and not from the generator's scanner."""

    seed: int = 5200000
    difficulty: str = "medium"
    test_hips: int = Field(60, description="hips of the fixed target test set")
    auxiliary: bool = Field(
        True,
        description="false: runs on the target's labelled hips train on the label alone "
        "(auxiliary={}), as a real cohort has no generator targets; pretraining is unchanged",
    )
    overrides: dict[str, Any] = Field(
        default_factory=lambda: {
            "center_freq_mhz": 5.0,
            "depth_mm": 60.0,
            "gain_db": 6.0,
            "labrum_thick_mm": 2.3,
        }
    )


class CurveEpochs(Settings):
    """Epochs per run: ``ceil(min_clips / training clips)`` clamped to ``[min, max]``."""

    min: int = 6
    max: int = 40
    min_clips: int = Field(
        3000, description="clips seen per run (the cleft recipe from scratch needs thousands)"
    )


class CurveSsl(Settings):
    """The self-supervised arm: ``labral pretrain`` on unlabelled clips of the target domain
    (a clinic's unlabelled exams), then fine-tuning as the other arms train."""

    patients: int = Field(
        300, ge=0, description="unlabelled target patients (one hip, 2 clips each); 0: no arm"
    )
    epochs: int = Field(8, ge=1, description="epochs of labral pretrain")
    overrides: list[str] = Field(
        default_factory=list, description="extra overrides of the pretraining run"
    )


class CurveGoal(Settings):
    """The claim checked: synthetic at ``synthetic`` hips matches scratch at ``scratch``."""

    synthetic: int = 40
    scratch: int = 160


class CurveSettings(Settings):
    """Every key of ``labral curve``, its type and its default."""

    out: str = Field("${paths.output_dir}", description="output folder (Hydra's run dir)")
    hips: list[int] = Field(
        default_factory=lambda: [20, 40, 80, 160],
        description="labelled target hips per run (one hip per patient), half detached",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1],
        description="each seed draws its own hips and trains with its own seed",
    )
    val_fraction: float = Field(0.2, description="of the hips, by patient and class (>= 1 each)")
    extrusion_threshold: list[float] = Field(
        default_factory=lambda: [0.0, 0.0],
        description="every clip of a detached hip shows the sign: clip label = hip label",
    )
    clip: CurveClip = Field(default_factory=CurveClip)
    clips_per_hip: int = 2
    source: CurveSource = Field(default_factory=CurveSource)
    target: CurveTarget = Field(default_factory=CurveTarget)
    train: list[str] = Field(
        default_factory=lambda: [
            "experiment=cleft",
            "trainer.early_stopping_patience=0",
            "trainer.progress=false",
            "logger.tensorboard=false",
        ],
        description="overrides of configs/train.yaml for every run, pretraining included "
        "(the cleft recipe: CleftNet with the generator's auxiliary targets)",
    )
    pretrain_epochs: int = 8
    epochs: CurveEpochs = Field(default_factory=CurveEpochs)
    arms: dict[str, list[str]] = Field(
        default_factory=lambda: {"synthetic": []},
        description="extra train overrides per arm (synthetic, ssl, kinetics; scratch: none); "
        "CleftNet fine-tunes every layer at the recipe's rate (it has no single `head` module "
        "for finetune.backbone_lr_scale to spare)",
    )
    ssl: CurveSsl = Field(default_factory=CurveSsl)
    kinetics_weights: Text | None = Field(
        None, description="torchvision Kinetics-400 r2plus1d_18 file: adds arm kinetics"
    )
    kinetics_model: str = "r2plus1d_18"
    goal: CurveGoal = Field(default_factory=CurveGoal)


def train_settings(cfg: DictConfig) -> TrainSettings:
    """The typed settings of a composed ``configs/train.yaml`` (every key but the
    :data:`TRAIN_GROUPS` nodes and ``hydra``).

    Raises:
        BadConfigError: a value of the wrong type, or a key no model states (named).
    """
    return settings_from_config(TrainSettings, cfg, ignore=TRAIN_GROUPS)
