"""Input checks for tests.

:func:`rule_check` is a check whose image and manoeuvre rules are real and whose view and
out-of-distribution detectors never refuse (an untrained view network behind thresholds no
clip reaches): a test of a route can make a clip not assessable on purpose (a blank clip:
``image_quality``; one frame repeated: ``no_manoeuvre`` too) without fitting anything.
A test of the view or OOD detectors fits a small check (:mod:`labral.input_check.fit`).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

from labral.input_check.check import OOD_EXTRA_DIMS, InputCheck, Thresholds
from labral.input_check.fit import CheckData, fit_input_check, generated_data
from labral.input_check.settings import InputCheckSettings
from labral.models.view_net import ViewNet

#: Rules of :func:`rule_check` (the view and OOD thresholds are out of reach).
RULES = Thresholds(
    min_duration_s=0.8,
    min_intensity_std=0.02,
    max_saturated_fraction=0.2,
    max_repeated_fraction=0.3,
    min_structure=0.01,
    min_motion=0.01,
    max_view_logit=1e9,
    max_ood_distance=1e9,
)


def rule_check(**thresholds: float) -> InputCheck:
    """A check with :data:`RULES` (``thresholds`` replace fields by name)."""
    torch.manual_seed(0)
    net = ViewNet().eval()
    dim = net.feature_dim + OOD_EXTRA_DIMS
    rules = dataclasses.replace(RULES, **thresholds)
    return InputCheck(net, rules, np.zeros(dim), np.zeros((dim, dim)), {"kind": "test rules"})


def blank_frames(frames: int = 24, height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 (T, H, W) all but black: refused for ``image_quality`` (detail ``blank``)."""
    rng = np.random.default_rng(1)
    return rng.integers(0, 3, (frames, height, width)).astype(np.uint8)


def still_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W): the middle frame of ``frames`` repeated (the hip cannot have moved)."""
    return np.repeat(frames[frames.shape[0] // 2][None], frames.shape[0], axis=0)


@functools.cache
def fitted_check() -> InputCheck:
    """A small check fitted on generated clips only (about half a minute, once per session):
    32 valid clips per level and 12 wrong inputs per training kind, 30 epochs. Tests of the view
    and OOD detectors, and of routes that must refuse a wrong view, use it."""
    settings = InputCheckSettings(
        synthetic_valid_per_level=32, wrong_per_kind=12, epochs=30, cache_dir=None, seed=1
    )
    return fit_input_check(generated_data(settings, CheckData()), settings)
