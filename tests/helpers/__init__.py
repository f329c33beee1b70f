"""Test helpers shared across test folders: import them as ``tests.helpers.<module>``.

Fixtures stay in the conftest files; plain functions a test calls (builders of bundles, DICOM
files and clips) live here, one home each. ``tests`` is not a package: pytest's
``--import-mode=importlib`` (pyproject) imports ``tests`` as a namespace rooted at this
repository's ``tests/`` folder when it loads ``tests/conftest.py``, so ``tests.helpers``
imports work in every test module and conftest (with ``PYTHONSAFEPATH=1`` too). A script
that runs outside pytest (``tests/bench/distributed_run.py`` under torchrun) cannot import
them.
"""
