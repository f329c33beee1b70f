"""What each clip type changes: the positive and the named hard negatives.

Every clip shows the same provocative movement (the femur rotates with the loading L(t)),
the same probe rocking (once per loading cycle, at a phase of its own), the same
anatomy, effusion, noise and anisotropy, and draws the same cleft event (size, contrast,
speckle decorrelation, burst length, lag, jitter; :mod:`params`). The types differ only in
*what drives* the cleft channel and *which way* fluid moves through it:

- ``positive``: fluid is pushed from the joint side through the cleft to the capsular side
  while the joint is being loaded (the burst starts ``lag`` + jitter into the loading stroke);
  its speckle decorrelates (flow).
- ``incoherent_twin``: the same burst on the *unloading* stroke: variant ``pocket`` travels
  backwards (capsule -> joint), variant ``late`` the positive's way, at the wrong time.
- ``probe_motion``: probe pressure squeezes fluid into the cleft and lets it drain back the
  way it came: flowing fluid timed by the probe (``pocket_onset``), not by the loading.
- ``anisotropy``: the labral base looks hypoechoic as the beam angle changes: a tongue-shaped
  darkening timed by the probe that fills and drains from the joint side, with the speckle
  change that a new beam angle brings.
- ``frozen_twin``: the tongue shape present but static (static speckle).
- ``sulcus``: a regular, narrow, partial cleft, static, no flow.
- ``normal``: nothing in the cleft.

Effusion in the anterior recess (fluid moving with the joint) is a property of the hip, drawn
the same way for both labels (:func:`labral.datasets.synth.anatomy.hip_anatomy`).
"""

from __future__ import annotations

from dataclasses import dataclass

from labral.datasets.synth.types import NEGATIVE_TYPES, POSITIVE_TYPE

#: Default mix of negative types (weights, sum 1). 91% of negatives have a moving cleft with
#: the positive's speckle decorrelation (85% with flowing fluid), so neither a still frame,
#: an order-free pooled statistic nor a two-frame change detector separates the classes.
DEFAULT_NEGATIVE_MIX = {
    "normal": 0.03,
    "sulcus": 0.03,
    "anisotropy": 0.06,
    "probe_motion": 0.20,
    "frozen_twin": 0.03,
    "incoherent_twin": 0.65,
}

CLIP_TYPES = (POSITIVE_TYPE, *NEGATIVE_TYPES)
#: Share of incoherent twins that travel backwards (the rest go the positive's way, late).
POCKET_SHARE = 0.85


@dataclass(frozen=True)
class Scenario:
    """How one clip type drives the cleft channel.

    Attributes:
        drive: what times the tongue per frame: ``"none"``, ``"loading"`` (the loading
            stroke), ``"unloading"`` (the unloading stroke), ``"probe"`` (the probe's own
            timing, ``pocket_onset``) or ``"static"``.
        filling: ``"flow"`` (fluid, decorrelating speckle and specks), ``"aniso"`` (tissue
            darkened by the beam angle, speckle changing with it) or ``"still"`` (fluid,
            static speckle).
        packet: ``"forward"`` (joint -> capsule), ``"reverse"`` (capsule -> joint) or
            ``"in_out"`` (fills from the joint side and drains back the same way).
        narrow: a thin, regular channel (the sulcus) instead of the drawn tongue width.
    """

    drive: str = "none"
    filling: str = "still"
    packet: str = "forward"
    narrow: bool = False


SCENARIOS: dict[str, Scenario] = {
    POSITIVE_TYPE: Scenario(drive="loading", filling="flow", packet="forward"),
    "normal": Scenario(),
    "sulcus": Scenario(drive="static", narrow=True),
    "anisotropy": Scenario(drive="probe", filling="aniso", packet="in_out"),
    "probe_motion": Scenario(drive="probe", filling="flow", packet="in_out"),
    "frozen_twin": Scenario(drive="static"),
    "incoherent_twin": Scenario(drive="unloading", filling="flow", packet="reverse"),
}


def pick_scenario(clip_type: str, variant_draw: float) -> tuple[Scenario, str]:
    """The scenario of a clip type, with the incoherent twin's variant.

    Args:
        clip_type: ``"positive"`` or one of ``NEGATIVE_TYPES`` (validated by the caller).
        variant_draw: the clip's uniform draw in [0, 1) (drawn for every type).

    Returns:
        ``(scenario, variant)``; variant is ``"pocket"`` or ``"late"`` for the incoherent
        twin and ``""`` otherwise.
    """
    scen = SCENARIOS[clip_type]
    if clip_type != "incoherent_twin":
        return scen, ""
    if variant_draw < POCKET_SHARE:
        return scen, "pocket"
    return Scenario(drive="unloading", filling="flow", packet="forward"), "late"
