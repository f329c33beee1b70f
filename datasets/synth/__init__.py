"""The `labral.datasets.synth` package of labral."""

# Guard: this folder must never be importable under a bare name (a top-level `datasets`
# would hide the HuggingFace package).
if __name__ != "labral.datasets.synth":
    raise ImportError(
        f"{__name__!r} is labral's folder for `labral.datasets.synth`: import it under that name "
        "after `pip install -e .` (`make test` does), not from the repository root"
    )
