"""The trainer options of ``configs/trainer/``: bf16 autocast, channels_last_3d and
torch.compile, each run on CPU through ``labral train``'s :func:`train`.

The quick tests (default suite) train one epoch of 4 optimizer steps with one option on and
check that it really acted (a bf16 activation inside the forward; channels_last_3d strides;
the compiled module called), that the loss stayed finite and that the weights moved. The
compile smoke uses TorchDynamo with the ``aot_eager`` backend (graph capture and
AOTAutograd's forward/backward graphs, about 10 s): inductor's C++ code generation takes
about 190 s cold on a 2-core machine, so the default backend runs only in the slow test,
which trains with all three options together and checks that the run learns.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from labral.models.compact import CompactVideoNet
from labral.train.command import train


def channels_last(tensor: torch.Tensor) -> bool:
    """Whether a 5-D tensor is strided as ``channels_last_3d`` (and not also as contiguous)."""
    return tensor.is_contiguous(memory_format=torch.channels_last_3d) and not (
        tensor.is_contiguous()
    )


def memory_formats(tensor: torch.Tensor) -> set[torch.memory_format]:
    """The memory formats a 5-D tensor is contiguous in (both when its sizes allow)."""
    formats = (torch.contiguous_format, torch.channels_last_3d)
    return {form for form in formats if tensor.is_contiguous(memory_format=form)}


@pytest.fixture
def forward_record() -> Iterator[dict[str, Any]]:
    """Records, through global module hooks, for every Conv3d call with more than one output
    channel in training (gradients on) and evaluation (inference mode), the output's dtype,
    whether the output is strided as ``channels_last_3d`` only, and the weight's memory format
    (``convs``: ``[(dtype, output channels-last, weight format), ...]``; a (1, 1, 1) kernel's
    weight is both formats), and the net's weights at its first
    forward (``initial``), before any optimizer step. The FLOP count's one forward at the
    start of a run (fp32, under ``no_grad``, :func:`labral.models.describe_model`) is left out.
    """
    record: dict[str, Any] = {"convs": [], "initial": None}

    def before(module: torch.nn.Module, args: tuple) -> None:
        if isinstance(module, CompactVideoNet) and record["initial"] is None:
            record["initial"] = copy.deepcopy(module.state_dict())

    def after(module: torch.nn.Module, args: tuple, output: Any) -> None:
        scoring = torch.is_grad_enabled() or torch.is_inference_mode_enabled()
        if scoring and isinstance(module, torch.nn.Conv3d) and output.shape[1] > 1:
            record["convs"].append(
                (output.dtype, channels_last(output), memory_formats(module.weight))
            )

    handles = [
        torch.nn.modules.module.register_module_forward_pre_hook(before),
        torch.nn.modules.module.register_module_forward_hook(after),
    ]
    yield record
    for handle in handles:
        handle.remove()


#: torch warns that global module hooks (``forward_record``'s) also fire on the compiled wrapper.
GLOBAL_HOOKS_WARNING = "ignore:Using `torch.compile\\(module\\)` when there are global hooks"


@pytest.fixture
def compile_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict[str, int]]:
    """``compile_calls(backend)``: make ``torch.compile`` use ``backend`` and count how often
    it is asked (``compiled``) and how often the compiled module runs (``calls``)."""

    def patch(backend: str) -> dict[str, int]:
        counts = {"compiled": 0, "calls": 0}
        real_compile = torch.compile

        def spy_compile(model: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
            counts["compiled"] += 1
            compiled = real_compile(model, **{**kwargs, "backend": backend})
            compiled.register_forward_pre_hook(
                lambda *_: counts.__setitem__("calls", counts["calls"] + 1)
            )
            return compiled

        monkeypatch.setattr(torch, "compile", spy_compile)
        return counts

    return patch


def epoch_losses(run_dir: str | Path) -> list[float]:
    """``train_loss`` of each epoch row of a run's metrics.jsonl."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [row["train_loss"] for row in map(json.loads, lines) if "epoch" in row]


def weights_moved(initial: dict[str, torch.Tensor], run_dir: str | Path) -> bool:
    """Whether a floating-point weight of ``checkpoints/last.pt`` differs from ``initial``."""
    last = torch.load(Path(run_dir) / "checkpoints" / "last.pt", weights_only=True)["model"]
    return any(
        not torch.equal(last[name].float(), value.float())
        for name, value in initial.items()
        if value.is_floating_point()
    )


def one_epoch(train_cfg, datasets, *overrides: str) -> tuple[dict[str, Any], str]:
    """Train one epoch (16 clips in batches of 4: 4 optimizer steps) with ``overrides``."""
    cfg = train_cfg("trainer.max_epochs=1", "logger.tensorboard=false", *overrides)
    return train(cfg, datasets=datasets), str(cfg.paths.output_dir)


def check_trained(record: dict[str, Any], run_dir: str) -> None:
    (loss,) = epoch_losses(run_dir)
    assert math.isfinite(loss)
    assert record["initial"] is not None and weights_moved(record["initial"], run_dir)


def test_bf16_autocast_runs_the_convolutions_in_bf16(train_cfg, tiny_datasets, forward_record):
    result, run_dir = one_epoch(train_cfg, tiny_datasets(), "trainer.precision=bf16")
    dtypes = {dtype for dtype, *_ in forward_record["convs"]}
    assert dtypes == {torch.bfloat16}, dtypes  # every conv, training and evaluation
    check_trained(forward_record, run_dir)
    assert result["test"]["n"] == 8


def test_precision_32_keeps_float32(train_cfg, tiny_datasets, forward_record):
    one_epoch(train_cfg, tiny_datasets(), "trainer.precision='32'")
    assert {dtype for dtype, *_ in forward_record["convs"]} == {torch.float32}


def test_channels_last_3d_reaches_the_convolutions(train_cfg, tiny_datasets, forward_record):
    _, run_dir = one_epoch(train_cfg, tiny_datasets(), "trainer.channels_last_3d=true")
    outputs = [output for _, output, _ in forward_record["convs"]]
    weights = [weight for *_, weight in forward_record["convs"]]
    assert all(torch.channels_last_3d in weight for weight in weights), weights
    # the backend picks each output's layout (with 1 thread, the temporal (3, 1, 1) convs
    # answer channels-first); most stay channels-last
    assert sum(outputs) > len(outputs) / 2, outputs
    check_trained(forward_record, run_dir)


def test_channels_first_by_default(train_cfg, tiny_datasets, forward_record):
    one_epoch(train_cfg, tiny_datasets())
    assert not any(output for _, output, _ in forward_record["convs"])
    assert all(torch.contiguous_format in weight for *_, weight in forward_record["convs"])


@pytest.mark.filterwarnings(GLOBAL_HOOKS_WARNING)
def test_compile_trains_through_the_compiled_module(
    train_cfg, tiny_datasets, forward_record, compile_calls
):
    counts = compile_calls("aot_eager")
    _, run_dir = one_epoch(train_cfg, tiny_datasets(), "trainer.compile=true")
    assert counts == {"compiled": 1, "calls": 4}  # every training step ran compiled
    check_trained(forward_record, run_dir)


@pytest.mark.slow
@pytest.mark.filterwarnings(GLOBAL_HOOKS_WARNING)
def test_bf16_channels_last_and_inductor_compile_learn_the_motion_task(
    train_cfg, motion_datasets, forward_record, compile_calls
):
    counts = compile_calls("inductor")  # torch.compile's default backend
    cfg = train_cfg(
        "trainer.max_epochs=6",
        "trainer.early_stopping_patience=0",
        "optim.lr=0.01",
        "logger.tensorboard=false",
        "trainer.precision=bf16",
        "trainer.channels_last_3d=true",
        "trainer.compile=true",
    )
    result = train(cfg, datasets=motion_datasets)
    assert counts["compiled"] == 1 and counts["calls"] == 6 * 16
    assert {dtype for dtype, *_ in forward_record["convs"]} == {torch.bfloat16}
    losses = epoch_losses(cfg.paths.output_dir)
    assert len(losses) == 6 and all(map(math.isfinite, losses))
    # the thresholds of test_train_learning.py's float32 run (measured there: <= 0.16x)
    assert losses[-1] < 0.5 * losses[0], losses
    assert result["test"]["auroc"] >= 0.9, result["test"]
