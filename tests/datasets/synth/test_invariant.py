"""The generator's invariant (datasets/synth/params.py): no drawn number depends on the label.

Over a planned data set of more than 2,000 clips, every scalar parameter a clip is made from
(the hip's anatomy and effusion, imaging, movement, probe rocking, anisotropy and the cleft
event's size, contrast, decorrelation and timing) is compared between label 0 and label 1,
and between intact and detached hips, with a two-sample test (Kolmogorov-Smirnov for
continuous values, chi-squared for values with few levels), Bonferroni-corrected. Anatomy is
drawn per patient, so it is tested on one clip per patient (clips of one patient share it and
are not independent samples); everything else is drawn per clip and tested on every clip. The
parameters that *define* the label are the documented exception: the clip type and its
variant, and the provocation and threshold that decide whether a detached hip extrudes.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from labral.datasets.synth.anatomy import hip_anatomy
from labral.datasets.synth.dataset import ClipJob, plan_dataset
from labral.datasets.synth.generate import draw_patient
from labral.datasets.synth.params import clip_rng, draw_clip_params
from labral.datasets.synth.settings import SynthSettings

#: The label's own definition: excluded from the independence check, by design.
DEFINES_THE_LABEL = {"provocation", "extrusion_threshold"}
ALPHA = 0.01


def flat_scalars(tree: dict, prefix: str = "") -> dict[str, float]:
    """Every number in a nested dict, by dotted path (list items get their index)."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_scalars(value, f"{name}."))
        elif isinstance(value, list):
            out.update(flat_scalars(dict(enumerate(value)), f"{name}."))
        elif isinstance(value, bool | int | float) and not isinstance(value, str):
            out[name] = float(value)
    return out


def drawn_parameters(job: ClipJob, settings: SynthSettings) -> dict[str, float]:
    """The scalars one planned clip is made from, drawn exactly as the renderer draws them."""
    anatomy = draw_patient(job.patient_seed)
    hip = hip_anatomy(anatomy, job.side)
    rng = clip_rng(job.patient_seed, job.seed, job.clip_type)
    drawn = draw_clip_params(rng, settings.difficulty, settings.clip.frames, job.fps, {})
    drawn["cleft"].pop("stroke_jitter")  # per-stroke draws: their sd is "cleft.jitter"
    values = flat_scalars({"anatomy": hip, **drawn})
    values.pop("anatomy.patient_seed")
    values.pop("anatomy.texture_seed")
    values["plan.fps"] = job.fps
    # joint draws matter too: v0.1 locked the rocking to the loading in some negatives only
    rock_after = drawn["motion"]["rock_phase"] - drawn["motion"]["loading_phase"]
    values["derived.rock_after_loading"] = float(np.mod(rock_after, 2 * np.pi))
    return values


def dependent_parameters(
    table: dict[str, np.ndarray], groups: np.ndarray, alpha: float = ALPHA
) -> list[tuple[str, float]]:
    """Parameters whose distribution differs between ``groups`` (0/1), Bonferroni-corrected.

    Returns:
        ``(name, p-value)`` of every parameter the test rejects at ``alpha / len(table)``.
    """
    rejected = []
    for name, values in table.items():
        a, b = values[groups == 0], values[groups == 1]
        levels = np.unique(values)
        if len(levels) <= 1:
            continue
        if len(levels) <= 10:
            counts = np.array([[np.sum(a == v) for v in levels], [np.sum(b == v) for v in levels]])
            p = stats.chi2_contingency(counts)[1]
        else:
            p = stats.ks_2samp(a, b).pvalue
        if p < alpha / len(table):
            rejected.append((name, float(p)))
    return rejected


Planned = dict[str, tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]


@pytest.fixture(scope="module")
def planned() -> Planned:
    """``{"clip": ..., "patient": ...}``: (parameter table, clip labels, hip labels) each."""
    settings = SynthSettings.from_config({"out": "unused", "n_patients": 720}, check_out=False)
    jobs = plan_dataset(settings)
    rows = [drawn_parameters(job, settings) for job in jobs]
    names = sorted(set.intersection(*(set(r) for r in rows)))
    first_of_patient = sorted(
        {job.patient: i for i, job in reversed(list(enumerate(jobs)))}.values()
    )
    out: Planned = {}
    for level, index in (("clip", list(range(len(jobs)))), ("patient", first_of_patient)):
        keep = [n for n in names if n.startswith("anatomy.") == (level == "patient")]
        table = {n: np.array([rows[i][n] for i in index]) for n in keep}
        labels = np.array([int(jobs[i].clip_type == "positive") for i in index])
        hip_labels = np.array([jobs[i].hip_label for i in index])
        out[level] = (table, labels, hip_labels)
    return out


def test_enough_clips_and_parameters(planned: Planned) -> None:
    table, labels, hip_labels = planned["clip"]
    assert len(labels) >= 2000 and 0.25 < labels.mean() < 0.5
    assert 400 < labels.sum() and (hip_labels == 0).sum() > 400
    assert len(table) >= 30 and len(planned["patient"][0]) >= 20  # every scalar drawn
    assert len(planned["patient"][1]) == 720
    for knob in ("cleft.extent_max", "cleft.lag", "motion.rock_phase", "labrum_anisotropy.k"):
        assert knob in table
    assert "anatomy.effusion" in planned["patient"][0]
    assert not DEFINES_THE_LABEL & (set(table) | set(planned["patient"][0]))


@pytest.mark.parametrize("level", ["clip", "patient"])
def test_no_drawn_parameter_depends_on_the_clip_label(planned: Planned, level: str) -> None:
    table, labels, _ = planned[level]
    assert dependent_parameters(table, labels) == []


@pytest.mark.parametrize("level", ["clip", "patient"])
def test_no_drawn_parameter_depends_on_the_hip_label(planned: Planned, level: str) -> None:
    table, _, hip_labels = planned[level]
    assert dependent_parameters(table, hip_labels) == []


def test_the_check_catches_a_leak(planned: Planned) -> None:
    # what the anisotropy type did in v0.1: k drawn from (6, 12) for one class, (2, 12) else
    table, labels, _ = planned["clip"]
    leaky = dict(table)
    rng = np.random.default_rng(0)
    leaky["labrum_anisotropy.k"] = np.where(
        labels == 1, rng.uniform(2.0, 6.0, len(labels)), rng.uniform(2.5, 6.0, len(labels))
    )
    leaky["derived.rock_after_loading"] = np.where(
        labels == 0, np.pi / 4, table["derived.rock_after_loading"]
    )
    found = {name for name, _ in dependent_parameters(leaky, labels)}
    assert found == {"labrum_anisotropy.k", "derived.rock_after_loading"}
