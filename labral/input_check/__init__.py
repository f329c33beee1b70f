"""The input check: refuse a clip the model cannot assess, with the reason and what to do.

:mod:`verdict` (the answer every route gives), :mod:`features` (what is measured),
:mod:`check` (the detectors and thresholds), :mod:`fit` (fitting one at export),
:mod:`settings` (the ``input_check.*`` keys).
"""
