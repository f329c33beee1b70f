"""The `labral.datasets.synth` package of labral."""

if __name__ != "labral.datasets.synth":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.datasets.synth` folder; import it as `labral.datasets.synth` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
