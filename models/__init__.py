"""labral's networks, one file per architecture, all built by Hydra ``_target_``.

Every network maps float32 (B, 1, T, H, W) to logits (B,) and has
``forward_with_relevance(x) -> (logits (B,), relevance (B, T))`` with
``logits == relevance.mean(dim=1)``; all are TorchScript-able.

- ``labral.models.compact.CompactVideoNet``: the default (2+1)D CNN for CPU work.
- ``labral.models.video_resnet.VideoResNet``: torchvision r2plus1d_18 / r3d_18 / mc3_18.
- ``labral.models.still_frame.StillFrameNet``: per-frame 2-D CNN, blind to motion.
- ``labral.models.describe.describe_model``: parameters and FLOPs per clip.
- ``labral.models.weights.load_init_weights``: start a net from a local state dict (a labral
  checkpoint or torchvision's Kinetics-400 file), ``model.init_weights=PATH``.
"""

# Guard: this folder must never be importable under a bare name.
if __name__ != "labral.models":
    raise ImportError(
        f"{__name__!r} is labral's folder for `labral.models`: import it under that name "
        "after `pip install -e .` (`make test` does), not from the repository root"
    )

from labral.models.describe import describe_model, format_description  # noqa: E402

__all__ = ["describe_model", "format_description"]
