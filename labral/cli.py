"""The ``labral`` command: each subcommand is a Hydra app over the shared ``configs/`` tree.

    labral synth n_patients=50 out=data/synth clip.frames=48
    labral train model=still_frame trainer.max_epochs=3
    labral export ckpt=... out=...
    labral bench bundle=<bundle> suite=synthetic-id
    labral serve bundle=<path> port=8000
    labral stream clip.dcm --server http://127.0.0.1:8000 --realtime

Every subcommand but ``stream`` (a client with plain flags) resolves ``configs/<name>.yaml``
and calls a plain ``run(cfg)`` function, so tests can compose the same configs and call the
function directly.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import labral.configs
from labral.errors import LabralError

#: subcommand -> (module, function taking a DictConfig)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "synth": ("labral.datasets.synth.command", "run", "generate a synthetic cine data set"),
    "manifest": (
        "labral.datasets.manifests.command",
        "run",
        "manifest your own DICOM/video folder",
    ),
    "train": ("labral.train.command", "run", "train a model (Hydra config tree)"),
    "pretrain": (
        "labral.train.pretrain",
        "run",
        "self-supervised pretraining on unlabelled clips (train's config tree)",
    ),
    "curve": ("labral.train.curve", "run", "learning curve: hips vs AUROC, scratch/pretrained"),
    "export": ("labral.train.export", "run", "export a checkpoint to a model bundle"),
    "bench": ("labral.bench.command", "run", "benchmark bundles on a suite"),
    "serve": ("labral.serve.command", "run", "serve a bundle over HTTP"),
}
#: subcommands with plain flags (a client, not a Hydra app): name -> (module, main(argv), help)
PLAIN_COMMANDS: dict[str, tuple[str, str, str]] = {
    "stream": (
        "labral.serve.stream.command",
        "main",
        "live scoring: replay a cine or send a device to a server's /v1/stream",
    ),
}

CONFIG_PATH = "pkg://labral.configs"
#: Commands that compose another command's config tree (pretrain: the model that fine-tunes).
CONFIG_NAMES = {"pretrain": "train"}


def _usage() -> str:
    lines = ["usage: labral <command> [key=value ...] [hydra options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += [f"  {name:<8} {help_}" for name, (_, _, help_) in PLAIN_COMMANDS.items()]
    lines += ["", "Each command is a Hydra app: `labral <command> --help` lists its settings"]
    lines += ["(`labral stream` takes plain flags: `labral stream --help`)."]
    return "\n".join(lines)


def _guarded(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Turn labral's typed errors into a one-line message and exit status 2."""

    def wrapper(cfg: Any) -> Any:
        try:
            return task(cfg)
        except LabralError as error:
            print(f"labral: error [{error.code}]: {error.message}", file=sys.stderr)
            sys.exit(2)

    wrapper.__name__ = getattr(task, "__name__", "task")
    wrapper.__module__ = getattr(task, "__module__", __name__)
    return wrapper


def unknown_group_choice(args: Sequence[str]) -> str | None:
    """The message for a ``group=choice`` override naming no file of a config group, or None.

    Hydra would stop with its own traceback-like report and exit 1; this names the setting
    and the choices the way every other bad setting is named (exit 2).
    """
    root = Path(labral.configs.__file__).resolve().parent
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key.startswith(("+", "~", "-")) or "." in key or "/" in key:
            continue
        group = root / key
        if group.is_dir() and value and not value.startswith(("[", "{", "/", "${")):
            if not (group / f"{value}.yaml").is_file():
                choices = sorted(p.stem for p in group.glob("*.yaml"))
                return f"{key}={value!r}: unknown {key}; use one of {', '.join(choices)}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labral`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name in PLAIN_COMMANDS:
        module_name, function_name, _ = PLAIN_COMMANDS[name]
        return getattr(importlib.import_module(module_name), function_name)(rest)
    if name not in COMMANDS:
        print(f"labral: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if name == "manifest" and rest and "=" not in rest[0] and not rest[0].startswith("-"):
        rest = [f"dir={rest[0]}", *rest[1:]]  # `labral manifest DIR ...`
    problem = unknown_group_choice(rest)
    if problem:
        print(f"labral: error [bad_config]: {problem}", file=sys.stderr)
        return 2
    import hydra

    # TorchScript is the bundle format by design (docs/contracts.md); torch marks it
    # deprecated on every save/load, which would bury the commands' own output.
    warnings.filterwarnings(
        "ignore",
        message=r".*is deprecated\. Please switch to `torch\.export`",
        category=FutureWarning,
    )
    module_name, function_name, _ = COMMANDS[name]
    task = getattr(importlib.import_module(module_name), function_name)
    app = hydra.main(
        version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAMES.get(name, name)
    )(_guarded(task))
    if name in CONFIG_NAMES:  # its own name in --help and in its default outputs/<name>/ folder
        rest = [f"hydra.job.name={name}", *rest]
    sys.argv = [f"labral-{name}", *rest]
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
