"""The runtimes that can run a bundle's model, and the file each one loads.

A bundle holds the same network in three formats (see :mod:`labral.bundle`)::

    runtime       file          loaded with                         runs on
    torchscript   model.ts      torch.jit.load                      CPU or GPU
    export        model.pt2     torch.export.load(...).module()     CPU or GPU
    onnxruntime   model.onnx    onnxruntime.InferenceSession        CPU only

Every runtime gives a callable ``forward(x float32 (B, 1, T, H, W)) -> (logits float32 (B,),
relevance float32 (B, T))`` on torch tensors, so :mod:`labral.scoring` does not care which one
runs. Spatial maps need ``d logit / d image``: TorchScript and the exported program are
differentiable and compute their own gradients; an ONNX Runtime session is not, so with
``onnxruntime`` a call that needs gradients runs the bundle's ``model.ts`` instead (the same
network, checked against the same eager outputs at export; :class:`OnnxRuntimeForward`), and
such a bundle must therefore hold model.ts too. Spatial maps are then exactly the
``torchscript`` runtime's.

:data:`DEFAULT_RUNTIME` is the one source of the default (``labral serve runtime=...``,
:func:`labral.bundle.load_bundle`); it is the fastest on CPU as measured by
``benchmarks/inference_speed.py`` (README, Benchmarks).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labral.errors import BadConfigError, IncompatibleBundleError

#: ``forward(x (B, 1, T, H, W)) -> (logits (B,), relevance (B, T))``, all float32 tensors.
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

#: Each runtime and the bundle file it loads.
RUNTIME_FILES: dict[str, str] = {
    "torchscript": "model.ts",
    "export": "model.pt2",
    "onnxruntime": "model.onnx",
}
#: The runtime used when none is named: the fastest measured on CPU (README, Benchmarks).
DEFAULT_RUNTIME = "onnxruntime"


def check_runtime(runtime: str) -> str:
    """``runtime`` itself when it is one of :data:`RUNTIME_FILES`.

    Raises:
        BadConfigError: an unknown name (lists the known ones).
    """
    if runtime not in RUNTIME_FILES:
        raise BadConfigError(
            f"runtime={runtime!r} is not known; use one of {', '.join(RUNTIME_FILES)}"
        )
    return runtime


def runtime_file(folder: Path, runtime: str, name: str | None = None) -> Path:
    """The file ``runtime`` loads from a bundle folder (``name``: another file it needs).

    Raises:
        BadConfigError: an unknown runtime.
        IncompatibleBundleError: the bundle lacks that file (names it and how to get it).
    """
    path = folder / (name or RUNTIME_FILES[check_runtime(runtime)])
    if not path.is_file():
        raise IncompatibleBundleError(
            f"{folder}: no {path.name}, which runtime={runtime} loads; re-export the model "
            f"with `labral export` (its default formats write it) or choose another runtime"
        )
    return path


#: ONNX opset of model.onnx (``labral export onnx_opset=`` overrides it).
ONNX_OPSET = 17


def onnx_bytes(
    module: torch.nn.Module,
    example: torch.Tensor,
    opset: int = ONNX_OPSET,
    names: tuple[str, str, str] = ("clip", "logits", "relevance"),
) -> bytes:
    """``module`` (eager or TorchScript, eval mode) as an ONNX model with a dynamic batch axis.

    Args:
        module: ``forward(x) -> (logits, relevance)`` (or two other outputs, see ``names``).
        example: float32 (B, 1, T, H, W), B >= 2 so that the batch axis stays symbolic.
        names: the input's and the two outputs' names.

    Returns:
        The serialised model: input ``clip``, outputs ``logits`` (B,) and ``relevance`` (B, T)
        (by default).
    """
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,  # the TorchScript-based exporter needs no onnxscript
            input_names=[names[0]],
            output_names=list(names[1:]),
            dynamic_axes=axes,
            opset_version=opset,
        )
    return buffer.getvalue()


class OnnxRuntimeForward:
    """An ONNX Runtime session (CPU) called like the TorchScript module.

    Args:
        model: the ``model.onnx`` file, or its bytes.
        threads: intra-op threads (default: ``torch.get_num_threads()``, the process's setting).
        differentiable: the same network in torch (the bundle's model.ts). A call that needs
            gradients (grad mode on and an input that requires grad, as in
            :func:`labral.scoring.spatial_maps`) goes to it, since a session has no backward.
        input_name: the model's input (as :func:`onnx_bytes` named it).
    """

    def __init__(
        self,
        model: str | Path | bytes,
        threads: int | None = None,
        differentiable: Forward | None = None,
        input_name: str = "clip",
    ) -> None:
        import onnxruntime

        self.differentiable = differentiable
        self.input_name = input_name

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        source = model if isinstance(model, bytes) else str(model)
        self.session = onnxruntime.InferenceSession(
            source, options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 (B, 1, T, H, W) -> logits float32 (B,), relevance float32 (B, T).

        Raises:
            IncompatibleBundleError: gradients asked for but no differentiable module given.
        """
        if torch.is_grad_enabled() and x.requires_grad:
            if self.differentiable is None:
                raise IncompatibleBundleError(
                    "input gradients (spatial maps) need the bundle's model.ts beside model.onnx"
                )
            return self.differentiable(x)
        logits, relevance = self.run_arrays(x.detach().cpu().float().contiguous().numpy())
        return torch.from_numpy(logits), torch.from_numpy(relevance)

    def run_arrays(self, x: np.ndarray) -> list[np.ndarray]:
        """The session's outputs on a float32 array, NumPy in and out (no tensor round trip,
        for callers whose arrays are NumPy already)."""
        return self.session.run(None, {self.input_name: x})


def load_torchscript(path: Path, device: str | torch.device, extra: dict[str, Any]) -> Any:
    """``model.ts`` as an eval-mode ScriptModule; fills ``extra`` with its extra files."""
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError subclasses of many kinds
        raise IncompatibleBundleError(f"{path}: cannot be loaded by torch ({exc})") from exc
    return module.eval()


def load_exported(path: Path, device: str | torch.device) -> torch.nn.Module:
    """``model.pt2`` (a ``torch.export`` program, exported in eval mode) as a module."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - a bad archive fails in many ways
        raise IncompatibleBundleError(f"{path}: cannot be loaded by torch.export ({exc})") from exc
    return program.module().to(device)


def load_onnxruntime(
    path: Path, device: str | torch.device, differentiable: Forward | None = None
) -> OnnxRuntimeForward:
    """``model.onnx`` as an ONNX Runtime CPU session (gradients through ``differentiable``).

    Raises:
        BadConfigError: a device other than the CPU.
        IncompatibleBundleError: a file ONNX Runtime cannot load.
    """
    if torch.device(device).type != "cpu":
        raise BadConfigError(f"runtime=onnxruntime runs on the CPU only, not on {device}")
    try:
        return OnnxRuntimeForward(path, differentiable=differentiable)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise IncompatibleBundleError(f"{path}: cannot be loaded by ONNX Runtime ({exc})") from exc
