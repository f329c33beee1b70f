"""The one registry of patient-seed ranges: training data and every benchmark suite.

A synthetic patient is fixed by its seed (``draw_patient(seed)``), so two data sets share a
patient exactly when they share a seed. The ranges:

- ``labral synth`` (training, validation, calibration, its test split): 32-bit seeds derived
  by ``SeedSequence`` (:data:`TRAINING_RANGE`, ``[0, 2**32)``);
- a benchmark suite: setting ``s`` of a suite with base ``seed`` uses patients
  ``SEED_OFFSET + seed + SETTING_STRIDE * s + p`` for ``p < n_patients``
  (:func:`suite_seed_ranges`); every suite in ``configs/suites/`` sets its own base.

:func:`check_suite_seeds` refuses a suite whose range meets another shipped suite's or the
training range (a suite edited or overridden into another one's patients), and
``tests/bench/test_seed_registry.py`` checks every shipped pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labral.errors import BadConfigError

#: Seeds ``labral synth`` can draw: ``SeedSequence(...).generate_state(1)[0]`` is 32-bit.
TRAINING_RANGE = (0, 2**32)
#: Suite patient seeds start here: above every training seed.
SEED_OFFSET = 2**32
#: Seeds reserved per suite setting (so a setting has at most this many patients).
SETTING_STRIDE = 100_000

SeedRange = tuple[int, int]


def suite_patient_seed(base: int, setting: int, patient: int) -> int:
    """The seed of patient ``patient`` of setting ``setting`` of a suite with base ``base``."""
    return SEED_OFFSET + int(base) + SETTING_STRIDE * int(setting) + int(patient)


def setting_patients(definition: Mapping[str, Any], setting: Mapping[str, Any]) -> int:
    """How many patients a setting of a suite draws (the setting's own or the suite's)."""
    return int(setting.get("n_patients", definition.get("n_patients", 10)))


def suite_seed_ranges(definition: Mapping[str, Any]) -> list[SeedRange]:
    """Half-open ``[low, high)`` patient-seed ranges of a suite's settings, in order.

    Raises:
        BadConfigError: a setting asks for more patients than :data:`SETTING_STRIDE`, or a
            negative base seed (the message names the suite).
    """
    name, base = definition.get("name", "?"), int(definition["seed"])
    if base < 0:
        raise BadConfigError(f"suite {name}: seed={base} must be >= 0")
    ranges = []
    for index, setting in enumerate(definition.get("settings") or [{"name": "default"}]):
        count = setting_patients(definition, setting)
        if not 0 < count <= SETTING_STRIDE:
            raise BadConfigError(
                f"suite {name}: setting {setting.get('name', index)!r} has n_patients={count}; "
                f"a setting holds 1 to {SETTING_STRIDE} patients"
            )
        low = suite_patient_seed(base, index, 0)
        ranges.append((low, low + count))
    return ranges


def _overlap(a: SeedRange, b: SeedRange) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def check_suite_seeds(definition: Mapping[str, Any], others: Mapping[str, Mapping]) -> None:
    """Refuse a suite that shares patient seeds with training or with another suite.

    Args:
        definition: the resolved suite definition (after overrides).
        others: name -> definition of the other suites (e.g. every shipped one).

    Raises:
        BadConfigError: naming the suite, the setting and what it collides with.
    """
    name = definition.get("name", "?")
    mine = suite_seed_ranges(definition)
    for low, high in mine:
        if _overlap((low, high), TRAINING_RANGE):
            raise BadConfigError(f"suite {name}: patient seeds [{low}, {high}) meet training's")
    for other_name, other in others.items():
        if other_name == name:
            continue
        for theirs in suite_seed_ranges(other):
            for index, rng in enumerate(mine):
                if _overlap(rng, theirs):
                    raise BadConfigError(
                        f"suite {name}: setting {index} uses patient seeds {list(rng)}, which "
                        f"overlap suite {other_name}'s {list(theirs)}; give it another `seed` "
                        f"(bases are {SETTING_STRIDE:,} x settings apart) or fewer patients"
                    )
