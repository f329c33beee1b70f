"""describe_model: parameter and FLOP counts that can be checked by hand."""

from __future__ import annotations

import torch
from torch import nn

from labral.models.compact import CompactVideoNet
from labral.models.describe import describe_model, format_description


class _OneConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 4, (3, 3, 3), padding=1, bias=False)
        self.fc = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3, 4))).squeeze(1)


def test_counts_match_hand_computation() -> None:
    model = _OneConv()
    described = describe_model(model, (1, 4, 8, 8))
    conv_flops = 2 * (1 * 27) * 4 * (4 * 8 * 8)  # 2 * MACs per output * outputs
    linear_flops = 2 * 4 * 1
    assert described["flops_per_clip"] == conv_flops + linear_flops
    assert described["params"] == 4 * 27 + 4 + 1
    assert described["input_shape"] == [1, 4, 8, 8]


def test_counts_scale_with_clip_length_and_restore_training_mode() -> None:
    model = CompactVideoNet()
    model.train()
    short = describe_model(model, (1, 16, 96, 96))
    long = describe_model(model, (1, 32, 96, 96))
    assert model.training
    assert abs(long["flops_per_clip"] / short["flops_per_clip"] - 2.0) < 0.01
    assert short["params"] == sum(p.numel() for p in model.parameters())
    frozen = CompactVideoNet()
    frozen.stem.requires_grad_(False)
    frozen_desc = describe_model(frozen, (1, 8, 32, 32))
    assert frozen_desc["trainable_params"] < frozen_desc["params"]


def test_default_compact_model_is_within_the_cpu_flop_budget(build_model) -> None:
    described = describe_model(build_model("compact"), (1, 16, 96, 96))
    assert 0.3 <= described["gflops_per_clip"] <= 1.5
    assert 1e5 < described["params"] < 2e6
    line = format_description(described)
    assert line.startswith("CompactVideoNet: ") and "GFLOPs per (1, 16, 96, 96) clip" in line


def test_video_resnets_cost_far_more_than_compact(build_model) -> None:
    compact = describe_model(build_model("compact"), (1, 8, 32, 32))
    big = describe_model(build_model("r2plus1d_18"), (1, 8, 32, 32))
    assert big["params"] > 20 * compact["params"]
    assert big["flops_per_clip"] > 10 * compact["flops_per_clip"]
