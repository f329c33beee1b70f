"""Export formats for ``labral export``: the relevance wrapper and one ``Exporter`` per format.

TorchScript is the bundle's format; ONNX (``model.onnx``) and ``torch.export``
(``model.pt2``) can sit beside it. Each exporter converts, runs (for the self-check in
:mod:`labral.train.export`) and saves its artifact.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from labral.errors import BadConfigError
from labral.runtimes import ONNX_OPSET, OnnxRuntimeForward, onnx_bytes


class RelevanceModule(nn.Module):
    """Wraps a labral network so that ``forward(x)`` returns ``(logits (B,), relevance (B, T))``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 (B, 1, T, H, W) -> logits float32 (B,), relevance float32 (B, T)."""
        return self.model.forward_with_relevance(x)


class Exporter(Protocol):
    """One export format: convert the wrapped model, run the result, save it into the bundle."""

    name: str

    def convert(self, module: nn.Module, example: torch.Tensor) -> Any:
        """Convert ``module`` (a ``RelevanceModule`` in eval mode) given an example input."""

    def run(self, artifact: Any, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Run the artifact on float32 (B, 1, T, H, W); returns logits (B,), relevance (B, T)."""

    def save(self, artifact: Any, out_dir: Path) -> Path | None:
        """Write the artifact into the bundle folder (None: ``write_bundle`` writes it)."""


class TorchScriptExporter:
    """The bundle's format: ``torch.jit.script`` (``trace`` only if scripting fails)."""

    name = "torchscript"

    def convert(self, module: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # script/trace are marked deprecated
            try:
                return torch.jit.script(module)
            except Exception as exc:  # noqa: BLE001 - any scripting failure falls back to trace
                print(f"labral export: torch.jit.script failed ({exc}); tracing instead")
                return torch.jit.trace(module, (example,))

    def run(self, artifact: Any, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            logits, relevance = artifact(x)
        return logits.numpy(), relevance.numpy()

    def save(self, artifact: Any, out_dir: Path) -> Path | None:
        return None  # write_bundle saves model.ts with the spec as an extra file


class OnnxExporter:
    """``model.onnx`` beside model.ts (batch axis dynamic), checked with ONNX Runtime."""

    name = "onnx"

    def __init__(self, opset: int = ONNX_OPSET) -> None:
        self.opset = opset

    def convert(self, module: nn.Module, example: torch.Tensor) -> bytes:
        return onnx_bytes(module, example, self.opset)

    def run(self, artifact: Any, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        logits, relevance = OnnxRuntimeForward(artifact)(x)
        return logits.numpy(), relevance.numpy()

    def save(self, artifact: Any, out_dir: Path) -> Path | None:
        path = out_dir / "model.onnx"
        path.write_bytes(artifact)
        return path


class TorchExportExporter:
    """A ``torch.export`` program saved as ``model.pt2`` (batch size dynamic)."""

    name = "torch_export"

    def convert(self, module: nn.Module, example: torch.Tensor) -> Any:
        return torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))

    def run(self, artifact: Any, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            logits, relevance = artifact.module()(x)
        return logits.numpy(), relevance.numpy()

    def save(self, artifact: Any, out_dir: Path) -> Path | None:
        path = out_dir / "model.pt2"
        torch.export.save(artifact, str(path))
        return path


def make_exporter(name: str, onnx_opset: int = ONNX_OPSET) -> Exporter:
    """The exporter for a format name (``torchscript`` | ``onnx`` | ``torch_export``).

    Raises:
        BadConfigError: unknown name (names the setting ``formats``).
    """
    if name == "torchscript":
        return TorchScriptExporter()
    if name == "onnx":
        return OnnxExporter(onnx_opset)
    if name == "torch_export":
        return TorchExportExporter()
    raise BadConfigError(f"formats: {name!r} is not known; use torchscript, onnx, torch_export")
