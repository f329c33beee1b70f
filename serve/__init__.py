"""The `labral.serve` package of labral."""

if __name__ != "labral.serve":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.serve` folder; import it as `labral.serve` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
