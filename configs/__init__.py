"""The `labral.configs` package of labral."""

if __name__ != "labral.configs":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.configs` folder; import it as `labral.configs` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
