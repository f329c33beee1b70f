"""``labral curve``: test AUROC against the number of labelled hips of a new domain, from
scratch against synthetic-pretrained init (and Kinetics-400 init when a file is given).

1. Two synthetic domains (``configs/curve.yaml``): the *source*, the generator's own
   ranges at ``source.difficulty``, and the *target*, at ``target.difficulty`` with every
   ``target.overrides`` value outside what the source draws (probe frequency, depth, gain,
   labrum thickness). One hip per target patient.
2. One pretraining run on the source (``pretrain_epochs``), in-domain test split included.
3. For every arm, number of hips n and seed: n target hips (half detached, drawn nested:
   a seed's 20 hips contain its 10), split by hip into train and ``val_fraction``
   validation (early stopping on val AUROC, calibration), trained for
   ``ceil(epochs.min_clips / training clips)`` epochs clamped to ``[epochs.min,
   epochs.max]``, scored on a fixed, separate target test set (``target.test_hips``).
   Arm ``scratch`` starts from random weights; ``synthetic`` from the pretraining run's
   ``best.pt`` with ``arms.synthetic`` overrides (a lower backbone learning rate); with
   ``kinetics_weights=PATH``, ``kinetics`` starts ``kinetics_model`` from that file.
4. ``curve.json`` (every run, then mean and sd per arm and n), ``curve.png`` and
   ``curve.html`` (the figure and the table; :mod:`labral.train.curve_report`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from labral.cli import main as cli_main
from labral.datasets.manifests.manifest import load_manifest
from labral.datasets.manifests.splits import assign_splits
from labral.datasets.synth.dataset import synthesize
from labral.errors import BadConfigError
from labral.settings import register_schema, settings_from_config
from labral.train.command import train
from labral.train.curve_report import PLOT_NAME, REPORT_NAME, write_figures
from labral.train.curve_resume import earlier_results
from labral.train.data import datasets_from_rows
from labral.train.pretrain import run as pretrain
from labral.train.settings import CURVE_SCHEMA, CurveEpochs, CurveSettings

register_schema(CURVE_SCHEMA, CurveSettings)

RESULT_NAME = "curve.json"


@contextmanager
def _hydra_ready() -> Iterator[None]:
    """Compose configs inside ``labral curve`` (Hydra is up) or from a plain call."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        yield


def compose(name: str, overrides: Sequence[str]) -> DictConfig:
    """``configs/<name>.yaml`` composed with ``overrides`` (no ``hydra`` node)."""
    with _hydra_ready():
        return hydra_compose(name, overrides=list(overrides))


def _value(value: Any) -> str:
    """A Hydra override value for a plain list or dict."""
    return json.dumps(value).replace('"', "").replace(" ", "")


def make_domain(
    settings: CurveSettings,
    name: str,
    n_patients: int,
    seed: int,
    overrides: dict[str, Any] | None,
    difficulty: str,
) -> list:
    """Generate (or reuse) one synthetic domain under ``<out>/data/<name>``; its rows.

    Args:
        settings: the curve's settings. name: folder name. n_patients: patients to draw.
        seed: generator seed. overrides: generator ``overrides`` (dict).
        difficulty: generator level (``configs/difficulty/``).

    Returns:
        The domain's manifest rows (validated, absolute paths).
    """
    out = Path(settings.out) / "data" / name
    hips = [1, 1] if name != "source" else [1, 2]
    settings = [
        f"out={out}",
        f"seed={seed}",
        f"n_patients={n_patients}",
        f"difficulty={difficulty}",
        f"hips_per_patient={_value(hips)}",
        f"clips_per_hip={settings.clips_per_hip}",
        f"extrusion_threshold={_value(settings.extrusion_threshold)}",
        f"clip.frames={settings.clip.frames}",
        f"clip.height={settings.clip.height}",
        f"clip.width={settings.clip.width}",
        "preview=false",
        "progress=false",
    ]
    shift = dict(overrides) if overrides else {}
    stamp, manifest = out / "curve_settings.json", out / "manifest.jsonl"
    recorded = {"settings": settings, "overrides": shift}
    if not (manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == recorded):
        synth = compose("synth", settings)
        with open_dict(synth):
            synth.overrides = shift
        synthesize(synth)
        stamp.write_text(json.dumps(recorded))
    # ids are per data set (P0000 in two domains are two people): prefix them with its name
    return [
        {**row, "patient": f"{name}-{row['patient']}", "hip": f"{name}-{row['hip']}"}
        for row in load_manifest(manifest)
    ]


def by_hip(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by ``hip`` (insertion order)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row["hip"]), []).append(row)
    return out


def choose_hips(
    pool: Sequence[dict[str, Any]], n: int, seed: int, val_fraction: float
) -> list[dict[str, Any]]:
    """``n`` hips of ``pool``, half of them positive, rows with ``split`` train/val.

    A hip is positive when one of its clips shows the sign (``label`` 1): training and the
    test AUROC are per clip, and a detached hip whose clips never show it (rare at
    ``extrusion_threshold`` 0) would leave a validation split without positive clips.

    The draw is nested: for one seed, the hips of a smaller ``n`` are a subset of a larger
    one's. Validation takes ``max(1, round(val_fraction * n / 2))`` hips of each class.

    Raises:
        BadConfigError: the pool holds fewer than ``n / 2`` hips of a class, or ``n`` < 4.
    """
    if n < 4:
        raise BadConfigError(f"hips={n}: a run needs at least 4 hips (2 per class)")
    hips = by_hip(pool)
    rng = np.random.default_rng(seed)
    chosen: list[dict[str, Any]] = []
    for label, count in ((1, n // 2), (0, n - n // 2)):
        names = [h for h, rows in hips.items() if max(r["label"] for r in rows) == label]
        if len(names) < count:
            raise BadConfigError(
                f"hips={n}: the target pool has {len(names)} hips of class {label}, "
                f"needs {count}; raise max(hips) or lower hips"
            )
        order = [names[i] for i in rng.permutation(len(names))][:count]
        n_val = max(1, round(val_fraction * count))
        for index, hip in enumerate(order):
            split = "val" if index < n_val else "train"
            chosen += [{**row, "split": split} for row in hips[hip]]
    return chosen


def epochs_for(train_clips: int, spec: CurveEpochs) -> int:
    """``ceil(spec.min_clips / train_clips)`` clamped to ``[spec.min, spec.max]``."""
    wanted = math.ceil(spec.min_clips / max(1, train_clips))
    return min(max(wanted, spec.min), spec.max)


def train_run(
    overrides: Sequence[str], rows: Sequence[dict[str, Any]], run_dir: Path
) -> dict[str, Any]:
    """One ``labral train`` on ``rows`` (with splits) under ``run_dir``; its result."""
    cfg = compose("train", [*overrides, f"paths.output_dir={run_dir}"])
    started = time.perf_counter()
    result = train(cfg, datasets=datasets_from_rows(cfg, rows, str(run_dir)))
    result["seconds"] = time.perf_counter() - started
    return result


def arm_overrides(settings: CurveSettings, arm: str, weights: dict[str, Path]) -> list[str]:
    """The train overrides of one arm (after the shared ``train`` list); ``weights``: the
    pretrained ``best.pt`` of arms ``synthetic`` and ``ssl``."""
    base = list(settings.train)
    if arm == "scratch":
        return base
    if arm in ("synthetic", "ssl"):
        extra = settings.arms.get(arm) or []
        return [*base, f"model.init_weights={weights[arm]}", *extra]
    shared = [o for o in base if not o.startswith("model.")]  # another architecture
    kinetics = settings.arms.get("kinetics") or []
    return [
        *shared,
        f"model={settings.kinetics_model}",
        f"model.init_weights={settings.kinetics_weights}",
    ] + (kinetics)


def summarize(points: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{arm: {hips: {"mean", "sd", "n", "values"}}}`` of the test AUROC of ``points``
    (sd with ddof 1; 0 for one seed; undefined AUROCs are left out)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for point in points:
        out.setdefault(point["arm"], {}).setdefault(str(point["hips"]), {"values": []})
        if point["auroc"] is not None:
            out[point["arm"]][str(point["hips"])]["values"].append(point["auroc"])
    for arms in out.values():
        for cell in arms.values():
            values = np.asarray(cell["values"], dtype=float)
            cell["n"] = int(values.size)
            cell["mean"] = float(values.mean()) if values.size else None
            cell["sd"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return out


def goal(summary: dict[str, Any], settings: CurveSettings) -> dict[str, Any] | None:
    """Whether the synthetic arm at ``goal.synthetic`` hips matches scratch at
    ``goal.scratch`` hips (mean test AUROC); None when either was not run."""
    spec = settings.goal.model_dump()
    try:
        ours = summary["synthetic"][str(spec["synthetic"])]["mean"]
        theirs = summary["scratch"][str(spec["scratch"])]["mean"]
    except KeyError:
        return None
    if ours is None or theirs is None:
        return None
    return {**spec, "synthetic_auroc": ours, "scratch_auroc": theirs, "met": ours >= theirs}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Entry point of ``labral curve`` (settings: :class:`labral.train.settings.CurveSettings`);
    returns the ``curve.json`` payload.

    Raises:
        BadConfigError: bad sizes (named), before any training.
    """
    settings = settings_from_config(CurveSettings, cfg, ignore=("paths",))
    return run_curve(settings, OmegaConf.to_container(cfg, resolve=True))


def run_curve(settings: CurveSettings, recorded: Any) -> dict[str, Any]:
    """Every run of the curve, then ``curve.json``, ``curve.png`` and ``curve.html`` under
    ``settings.out``; ``recorded`` (the composed config) is stored as the payload's
    ``settings``. Points (and pretraining runs) of an earlier ``curve.json`` there whose
    settings match are reused (:func:`earlier_results`).

    Raises:
        BadConfigError: bad sizes (named), before any training.
    """
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    hips = sorted(settings.hips)
    if not hips or hips[0] < 4:
        raise BadConfigError(f"hips={settings.hips}: every size must be >= 4")
    started = time.perf_counter()
    earlier = earlier_results(out / RESULT_NAME, recorded)
    source, pool, test = prepare_domains(settings, hips[-1])
    print(f"curve: data ready in {time.perf_counter() - started:.0f} s", flush=True)
    payload: dict[str, Any] = {"settings": recorded, "points": []}
    weights = pretrain_arms(settings, source, earlier, payload)
    arms = ["scratch", "synthetic"] + (["ssl"] if "ssl" in weights else [])
    arms += ["kinetics"] if settings.kinetics_weights else []
    for arm in arms:
        for n in hips:
            for seed in settings.seeds:
                point = earlier["points"].get((arm, n, seed))
                if point is None:
                    point = run_point(settings, arm, n, seed, pool, test, weights)
                payload["points"].append(point)
                print(f"curve: {arm} {n} hips seed {seed}: AUROC {point['auroc']}", flush=True)
                (out / RESULT_NAME).write_text(json.dumps(payload, indent=2))
    payload["summary"] = summarize(payload["points"])
    payload["goal"] = goal(payload["summary"], settings)
    payload["seconds"] = round(time.perf_counter() - started, 1)
    (out / RESULT_NAME).write_text(json.dumps(payload, indent=2))
    write_figures(payload, settings, out / PLOT_NAME, out / REPORT_NAME)
    print(
        f"labral curve: {len(payload['points'])} points in {payload['seconds'] / 60:.1f} min; "
        f"goal {payload['goal']}\n  {out / RESULT_NAME}\n  {out / PLOT_NAME}\n  {out / REPORT_NAME}"
    )
    return payload


def pretrain_arms(
    settings: CurveSettings,
    source: list[dict[str, Any]],
    earlier: dict[str, Any],
    payload: dict[str, Any],
) -> dict[str, Path]:
    """The pretraining runs of the arms that start from weights: supervised on the source
    domain (``synthetic``) and, with ``ssl.patients`` > 0, ``labral pretrain`` on unlabelled
    target clips (``ssl``); records them in ``payload``. Returns each arm's ``best.pt``.
    """
    out = Path(settings.out)
    weights = {"synthetic": out / "pretrain" / "checkpoints" / "best.pt"}
    if "pretrain" in earlier and weights["synthetic"].is_file():
        payload["pretrain"] = earlier["pretrain"]
    else:
        result = train_run(
            [*settings.train, f"trainer.max_epochs={settings.pretrain_epochs}"],
            source,
            out / "pretrain",
        )
        payload["pretrain"] = {"test_auroc": result["test"]["auroc"], "seconds": result["seconds"]}
    if settings.ssl.patients == 0:
        return weights
    weights["ssl"] = out / "ssl" / "checkpoints" / "best.pt"
    if "ssl_pretrain" in earlier and weights["ssl"].is_file():
        payload["ssl_pretrain"] = earlier["ssl_pretrain"]
        return weights
    manifest = unlabelled_manifest(settings)
    cfg = compose(
        "train",
        [
            *settings.train,
            f"trainer.max_epochs={settings.ssl.epochs}",
            f"data.manifest={manifest}",
            *settings.ssl.overrides,
            f"paths.output_dir={out / 'ssl'}",
        ],
    )
    started = time.perf_counter()
    summary = pretrain(cfg)
    payload["ssl_pretrain"] = {
        "clips": summary["clips"],
        "best_loss": summary["best_loss"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    return weights


def unlabelled_manifest(settings: CurveSettings) -> Path:
    """A manifest of ``ssl.patients`` new target-domain patients' clips with no label
    column (``path`` and ``patient`` only): what a clinic's archive gives."""
    target = settings.target
    rows = make_domain(
        settings,
        "target_unlabelled",
        settings.ssl.patients,
        target.seed + 2,
        target.overrides,
        target.difficulty,
    )
    path = Path(settings.out) / "data" / "target_unlabelled" / "unlabelled.jsonl"
    lines = [json.dumps({"path": row["path"], "patient": row["patient"]}) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def prepare_domains(
    settings: CurveSettings, largest: int
) -> tuple[list[dict], list[dict], list[dict]]:
    """The three data sets of a curve: ``(source rows split train/val/test by patient and
    class, the target pool of ``largest`` hips, the target test rows)``."""
    source_domain, target = settings.source, settings.target
    source = make_domain(
        settings,
        "source",
        source_domain.n_patients,
        source_domain.seed,
        None,
        source_domain.difficulty,
    )
    # by patient and class, so a small source still validates on both classes
    source = assign_splits([{k: v for k, v in r.items() if k != "split"} for r in source])
    level = target.difficulty
    pool = make_domain(settings, "target", largest, target.seed, target.overrides, level)
    test = make_domain(
        settings, "target_test", target.test_hips, target.seed + 1, target.overrides, level
    )
    return source, pool, [{**row, "split": "test"} for row in test]


def run_point(
    settings: CurveSettings,
    arm: str,
    n: int,
    seed: int,
    pool: list[dict[str, Any]],
    test: list[dict[str, Any]],
    weights: dict[str, Path],
) -> dict[str, Any]:
    """One point of the curve: arm ``arm`` trained on ``n`` hips of ``pool`` drawn with
    ``seed``, scored on ``test``; its row of ``curve.json``'s ``points``."""
    rows = choose_hips(pool, n, seed, settings.val_fraction)
    n_train = sum(1 for r in rows if r["split"] == "train")
    epochs = epochs_for(n_train, settings.epochs)
    no_targets = [] if settings.target.auxiliary else ["auxiliary={}"]
    result = train_run(
        [*arm_overrides(settings, arm, weights), f"seed={seed}", *no_targets]
        + [f"trainer.max_epochs={epochs}"],
        rows + test,
        Path(settings.out) / "runs" / f"{arm}_h{n}_s{seed}",
    )
    return {
        "arm": arm,
        "hips": n,
        "seed": seed,
        "auroc": result["test"]["auroc"],
        "train_clips": n_train,
        "epochs": epochs,
        "best_epoch": result["best_epoch"],
        "seconds": round(result["seconds"], 1),
    }


def main() -> None:
    """``python -m labral.train.curve ...``: same as ``labral curve``."""
    sys.exit(cli_main(["curve", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
