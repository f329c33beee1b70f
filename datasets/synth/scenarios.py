"""What each clip type changes: the positive and the named hard negatives.

Every clip shows the same provocative movement (the femur moves with the loading L(t)).
The types differ only in what happens in the chondrolabral cleft channel and around it:

- ``positive``: fluid extrudes through the cleft while the joint is *being loaded*: the
  tongue extent follows the positive half-wave of the loading velocity, and its scatterers
  decorrelate fast (flow).
- ``incoherent_twin``: the positive's per-frame appearances in an order no flow produces.
  Variant ``pocket``: an anechoic pocket filling on the *unloading* stroke (for a symmetric
  cycle with random phase, the per-frame (femur position, extent) distribution equals the
  positive's); variant ``flicker``: the labral base goes anechoic-looking beyond ~71% of
  the probe's rocking excursion either way (anisotropy). The thigh rocks the probe at half
  the loading frequency; in the rocking-driven types the phase is such that those angles
  come on the *unloading* strokes, so the (femur position, extent) distribution per frame
  is again the positive's and only the order differs.
- ``anisotropy``: a more anisotropic labrum (k 6-12 in |cos|^k, others 2-12): it dims with
  the probe angle and its base flickers hypoechoic in the tongue's shape as the probe rocks.
- ``probe_motion``: the probe's rocking, drift and pressure (drawn from the same ranges as
  every clip, so that motion alone is no cue) make the labral base flicker the same way.
- ``frozen_twin``: the full tongue shape present but static (static speckle).
- ``sulcus``: a regular, narrow, partial cleft, static, no flow.
- ``static_effusion``: anechoic fluid in the anterior recess along the neck, never in the cleft.
- ``normal``: nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labral.datasets.synth.types import NEGATIVE_TYPES, POSITIVE_TYPE

#: Default mix of negative types (weights, sum 1). 84% of negatives show the positive's
#: set of per-frame appearances with the wrong timing (incoherent_twin, anisotropy,
#: probe_motion), which keeps an order-free pooled classifier near AUROC 1 - 0.84/2.
DEFAULT_NEGATIVE_MIX = {
    "normal": 0.04,
    "sulcus": 0.04,
    "static_effusion": 0.04,
    "anisotropy": 0.22,
    "probe_motion": 0.22,
    "frozen_twin": 0.04,
    "incoherent_twin": 0.40,
}

CLIP_TYPES = (POSITIVE_TYPE, *NEGATIVE_TYPES)


@dataclass(frozen=True)
class Scenario:
    """How one clip type drives the cleft channel.

    Attributes:
        drive: what sets the tongue extent per frame: ``"none"``, ``"loading"`` (+velocity),
            ``"unloading"`` (-velocity), ``"rocking"`` (probe angle) or ``"static"``.
        filling: ``"flow"`` (fluid, fast decorrelation), ``"still_fluid"`` (fluid, static
            speckle) or ``"aniso"`` (tissue made hypoechoic by the beam angle).
        width_scale: tongue width relative to the drawn cleft width.
        effusion: anterior-recess effusion along the neck.
        probe_scale: range of the probe-motion amplitude multiplier.
        labrum_k: range of the labrum's anisotropy exponent k in |cos|^k.
        labrum_offset_deg: range of the labrum fibre offset from perpendicular, degrees.
    """

    drive: str = "none"
    filling: str = "still_fluid"
    width_scale: float = 1.0
    effusion: bool = False
    probe_scale: tuple[float, float] = (0.8, 2.0)
    labrum_k: tuple[float, float] = (2.0, 12.0)
    labrum_offset_deg: tuple[float, float] = (-6.0, 6.0)


SCENARIOS: dict[str, Scenario] = {
    POSITIVE_TYPE: Scenario(drive="loading", filling="flow"),
    "normal": Scenario(),
    "sulcus": Scenario(drive="static", width_scale=0.55),
    "static_effusion": Scenario(effusion=True),
    "anisotropy": Scenario(drive="rocking", filling="aniso", labrum_k=(6.0, 12.0)),
    "probe_motion": Scenario(drive="rocking", filling="aniso"),
    "frozen_twin": Scenario(drive="static"),
    "incoherent_twin": Scenario(drive="unloading"),
}


def pick_scenario(clip_type: str, rng: np.random.Generator) -> tuple[Scenario, str]:
    """The scenario of a clip type, with the incoherent twin's variant drawn.

    Args:
        clip_type: ``"positive"`` or one of ``NEGATIVE_TYPES`` (validated by the caller).
        rng: the clip's generator.

    Returns:
        ``(scenario, variant)``; variant is ``"pocket"`` or ``"flicker"`` for the
        incoherent twin and ``""`` otherwise.
    """
    scen = SCENARIOS[clip_type]
    if clip_type != "incoherent_twin":
        return scen, ""
    if rng.random() < 0.6:
        return scen, "pocket"
    return Scenario(drive="rocking", filling="aniso"), "flicker"


def static_extent(clip_type: str, rng: np.random.Generator) -> float:
    """Extent of a static cleft shape: partial for a sulcus, large for a frozen twin."""
    if clip_type == "sulcus":
        return float(rng.uniform(0.35, 0.55))
    return float(rng.uniform(0.6, 1.0))
