"""The `labral.train` package of labral."""

# Guard: this folder must never be importable under a bare name (a top-level `datasets`
# would hide the HuggingFace package).
if __name__ != "labral.train":
    raise ImportError(
        f"{__name__!r} is labral's folder for `labral.train`: import it under that name "
        "after `pip install -e .` (`make test` does), not from the repository root"
    )

# labral train's settings schema goes into Hydra's ConfigStore with the package, not with its
# command module: tests, `labral curve` and the benchmarks compose configs/train.yaml (which
# lists train_schema first) before they import labral.train.command.
from labral.settings import register_schema  # noqa: E402
from labral.train.settings import TRAIN_SCHEMA, TrainSettings  # noqa: E402

register_schema(TRAIN_SCHEMA, TrainSettings)
