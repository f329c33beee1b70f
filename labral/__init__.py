"""labral: detect anterior hip labral detachment in dynamic (cine) hip ultrasound.

One import namespace maps the repository folders: ``labral.datasets`` -> ``datasets/``,
``labral.models`` -> ``models/``, ``labral.train`` -> ``train/``, ``labral.serve`` ->
``serve/``, ``labral.bench`` -> ``bench/``, ``labral.configs`` -> ``configs/``.
"""

__version__ = "0.1.0"
