"""The `labral.datasets` package of labral."""

if __name__ != "labral.datasets":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.datasets` folder; import it as `labral.datasets` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
