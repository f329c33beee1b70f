"""What an earlier ``curve.json`` of ``labral curve`` still holds: a killed curve resumes,
and an arm can be added to a finished one, without training again what has not changed.

A point (arm, hips, seed) is reused when every setting it depends on (:data:`COMMON_KEYS`
plus the arm's :data:`ARM_KEYS` and its per-arm overrides) is the same in the earlier
``curve.json``'s recorded settings as now. A pretraining run is reused when its own
:data:`PRETRAIN_KEYS` match, the target's ``auxiliary`` switch left out (only the labelled
target runs read it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: What every point depends on besides its arm, size and seed (keys of the composed config).
COMMON_KEYS = (
    "val_fraction",
    "extrusion_threshold",
    "clip",
    "clips_per_hip",
    "source",
    "target",
    "train",
    "epochs",
)
#: What each arm's points depend on besides :data:`COMMON_KEYS` (and ``arms.<arm>``).
ARM_KEYS = {
    "scratch": (),
    "synthetic": ("pretrain_epochs",),
    "ssl": ("ssl",),
    "kinetics": ("kinetics_weights", "kinetics_model"),
}
#: What each pretraining run depends on, and its record's key in ``curve.json``.
PRETRAIN_KEYS = {
    "synthetic": ("pretrain", ("clip", "source", "train", "pretrain_epochs")),
    "ssl": ("ssl_pretrain", ("clip", "target", "train", "ssl")),
}


def _canonical(picked: dict[str, Any]) -> str:
    return json.dumps(picked, sort_keys=True)


def point_fingerprint(recorded: dict[str, Any], arm: str) -> str:
    """The settings an ``arm``'s points depend on, as canonical JSON (``recorded``: a
    ``curve.json``'s ``settings``, the composed config)."""
    picked = {key: recorded.get(key) for key in COMMON_KEYS + ARM_KEYS[arm]}
    picked["arm_overrides"] = (recorded.get("arms") or {}).get(arm) or []
    return _canonical(picked)


def pretraining_fingerprint(recorded: dict[str, Any], arm: str) -> str:
    """The settings the pretraining run of ``arm`` (synthetic or ssl) depends on."""
    picked = {key: recorded.get(key) for key in PRETRAIN_KEYS[arm][1]}
    if isinstance(picked.get("target"), dict):
        picked["target"] = {k: v for k, v in picked["target"].items() if k != "auxiliary"}
    return _canonical(picked)


def earlier_results(path: Path, recorded: dict[str, Any]) -> dict[str, Any]:
    """What the earlier ``curve.json`` at ``path`` holds that still applies: ``points``
    keyed ``(arm, hips, seed)``, and the ``pretrain`` / ``ssl_pretrain`` records, where their
    settings are unchanged (a missing or unreadable file gives no points)."""
    try:
        earlier = json.loads(path.read_text())
        before = earlier["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return {"points": {}}
    same = {a for a in ARM_KEYS if point_fingerprint(before, a) == point_fingerprint(recorded, a)}
    points = earlier.get("points", [])
    kept: dict[str, Any] = {
        "points": {(p["arm"], p["hips"], p["seed"]): p for p in points if p["arm"] in same}
    }
    for arm, (key, _) in PRETRAIN_KEYS.items():
        unchanged = pretraining_fingerprint(before, arm) == pretraining_fingerprint(recorded, arm)
        if key in earlier and unchanged:
            kept[key] = earlier[key]
    return kept
