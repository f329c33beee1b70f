"""``labral synth``: validate the config, generate the data set, say where it went.

labral synth n_patients=50 out=data/synth clip.frames=48 formats.mp4=true
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from labral.datasets.synth.dataset import SUMMARY_NAME, synthesize
from labral.datasets.synth.settings import SynthSettings


def format_report(manifest: Path, summary: Mapping[str, Any]) -> str:
    """The lines printed at the end of ``labral synth`` (where, counts, preview paths)."""
    out = manifest.parent
    run = summary.get("run", {})
    lines = [
        f"labral synth: {summary['clips']} clips from {summary['patients']} synthetic patients "
        f"({summary['hips']} hips) in {run.get('seconds', 0):.1f} s "
        f"({run.get('clips_per_s', 0):.1f} clips/s, {run.get('workers', 1)} workers)",
        f"  data set : {out}",
        f"  manifest : {manifest}",
        f"  summary  : {out / SUMMARY_NAME}",
        "  by split : "
        + ", ".join(
            f"{name} {c['clips']} clips / {c['patients']} patients ({c['positive']} positive)"
            for name, c in summary["by_split"].items()
        ),
        "  by type  : " + ", ".join(f"{k} {v}" for k, v in summary["by_type"].items()),
    ]
    previews = summary.get("preview") or []
    if previews:
        lines.append(f"  preview  : {out / previews[0]}")
        lines += [f"             {out / p}" for p in previews[1:]]
    return "\n".join(lines)


def run(cfg: DictConfig) -> Path:
    """Entry point of ``labral synth`` (called by ``labral.cli`` with the composed config).

    Args:
        cfg: the ``synth`` config (``configs/synth.yaml`` plus overrides).

    Returns:
        Path of the written ``manifest.jsonl``.

    Raises:
        BadConfigError: a bad setting, named in the message, before any work is done.
    """
    settings = SynthSettings.from_config(cfg)  # every check first
    manifest = synthesize(settings)
    summary = json.loads((manifest.parent / SUMMARY_NAME).read_text())
    print(format_report(manifest, summary), flush=True)
    return manifest
