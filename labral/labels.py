"""The product's two classes, indexed by label: the one statement of their names.

Label 0 is ``"intact"``, label 1 (:data:`POSITIVE_LABEL`) is ``"detachment"``, the class whose
calibrated probability every bundle reports. :mod:`labral.bundle` requires a bundle's
``class_names`` to be :data:`CLASS_NAMES`; the data layer names a class in its messages with
it. Imports nothing, so every layer may use it.
"""

from __future__ import annotations

#: The product's classes, indexed by label: what every bundle's ``class_names`` must be.
CLASS_NAMES: tuple[str, str] = ("intact", "detachment")
#: The label whose calibrated probability a bundle reports (``class_names[1]``).
POSITIVE_LABEL = 1
