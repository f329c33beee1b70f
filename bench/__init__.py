"""The `labral.bench` package of labral."""

if __name__ != "labral.bench":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.bench` folder; import it as `labral.bench` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
