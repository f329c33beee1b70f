"""The demo bundle and clip, for ``benchmarks/serve_load.py`` and ``benchmarks/dicom_load.py``.

Moved to :mod:`labral.demo_bundle` (the toy model is not a part of serving, and the bench and
core tests build their bundles with it too); these names stay importable from here.
"""

from __future__ import annotations

from labral.demo_bundle import DEMO_EVAL_SPEC, demo_frames, make_demo_bundle

__all__ = ["DEMO_EVAL_SPEC", "demo_frames", "make_demo_bundle"]
