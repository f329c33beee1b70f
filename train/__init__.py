"""The `labral.train` package of labral."""

if __name__ != "labral.train":  # guard: this folder must never be importable under a bare name
    raise ImportError(
        f"'{__name__}' is labral's `labral.train` folder; import it as `labral.train` after "
        "`pip install -e .` (run `make test`), not from the repository root"
    )
