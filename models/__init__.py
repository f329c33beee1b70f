"""The `labral.models` package of labral."""

if __name__ != "labral.models":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.models` folder; import it as `labral.models` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
