"""Every network: shapes, relevance consistent with the logit, TorchScript round-trip."""

from __future__ import annotations

import pytest
import torch

from labral.errors import BadConfigError
from labral.models.compact import CompactVideoNet
from labral.models.still_frame import StillFrameNet
from labral.models.video_resnet import VideoResNet


def test_shapes_and_relevance_consistent_with_logit(model_name, build_model, clip_shape) -> None:
    model = build_model(model_name)
    shape = clip_shape
    x = torch.rand(shape)
    with torch.no_grad():
        logits = model(x)
        logits_r, relevance = model.forward_with_relevance(x)
    assert logits.shape == (shape[0],) and logits.dtype == torch.float32
    assert relevance.shape == (shape[0], shape[2]) and relevance.dtype == torch.float32
    torch.testing.assert_close(logits, logits_r)
    torch.testing.assert_close(relevance.mean(dim=1), logits, rtol=0, atol=1e-6)
    assert not torch.allclose(logits[0], logits[1])  # two different clips, two different scores


@pytest.mark.parametrize("frames", [7, 13])
def test_relevance_covers_every_frame_when_length_not_a_multiple_of_stride(frames: int) -> None:
    model = CompactVideoNet().eval()
    with torch.no_grad():
        logits, relevance = model.forward_with_relevance(torch.rand(1, 1, frames, 32, 32))
    assert relevance.shape == (1, frames)
    torch.testing.assert_close(relevance.mean(dim=1), logits, rtol=0, atol=1e-6)


def test_torchscript_round_trip(model_name, build_model, clip_shape, tmp_path) -> None:
    name = model_name
    model = build_model(name)
    x = torch.rand(clip_shape)
    scripted = torch.jit.script(model)
    path = tmp_path / f"{name}.ts"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        want_logits, want_rel = model.forward_with_relevance(x)
        got_logits, got_rel = loaded.forward_with_relevance(x)
        got_forward = loaded(x)
    torch.testing.assert_close(got_logits, want_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_rel, want_rel, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_forward, want_logits, rtol=0, atol=1e-5)


def test_still_frame_is_blind_to_frame_order_and_compact_is_not() -> None:
    x = torch.rand(1, 1, 12, 48, 48)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    still = StillFrameNet().eval()
    compact = CompactVideoNet().eval()
    with torch.no_grad():
        still_logit, still_rel = still.forward_with_relevance(x)
        still_perm, still_rel_perm = still.forward_with_relevance(x[:, :, perm])
        compact_logit = compact(x)
        compact_perm = compact(x[:, :, perm])
    torch.testing.assert_close(still_perm, still_logit, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(still_rel_perm, still_rel[:, perm], rtol=1e-5, atol=1e-7)
    # at random initialisation logits are small; compare the change to the logit's own size
    relative_change = ((compact_perm - compact_logit).abs() / compact_logit.abs()).item()
    assert relative_change > 1e-4  # float32 noise is ~1e-7; the still-frame net stays below 1e-5


def test_still_frame_relevance_is_each_frame_scored_alone() -> None:
    model = StillFrameNet().eval()
    x = torch.rand(1, 1, 5, 32, 32)
    with torch.no_grad():
        _, relevance = model.forward_with_relevance(x)
        third = model(x[:, :, 2:3])
    torch.testing.assert_close(relevance[0, 2], third[0], rtol=0, atol=1e-6)


def test_video_resnet_takes_one_channel_and_rejects_unknown_arch() -> None:
    model = VideoResNet(in_channels=1, arch="r3d_18")
    assert model.stem[0].in_channels == 1
    with pytest.raises(BadConfigError, match="model.arch"):
        VideoResNet(arch="r4d_50")


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"norm": "layer"}, "model.norm"),
        ({"act": "tanhh"}, "model.act"),
        ({"widths": [16, 32], "temporal_strides": [1, 2]}, "model.temporal_strides"),
        ({"widths": []}, "model.widths"),
    ],
)
def test_bad_constructor_arguments_name_the_setting(kwargs: dict, setting: str) -> None:
    with pytest.raises(BadConfigError, match=setting.replace(".", r"\.")):
        CompactVideoNet(**kwargs)


@pytest.mark.parametrize("norm", ["instance", "group", "none"])
def test_other_norms_build_and_script(norm: str) -> None:
    model = CompactVideoNet(norm=norm, act="silu").eval()
    x = torch.rand(1, 1, 8, 32, 32)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("pool", "motion_channel"), [("max", False), ("avgmax", True)])
def test_pool_and_motion_channel_options_script_and_stay_consistent(pool, motion_channel) -> None:
    model = CompactVideoNet(pool=pool, motion_channel=motion_channel).eval()
    x = torch.rand(2, 1, 8, 32, 32)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        logits, relevance = model.forward_with_relevance(x)
        torch.testing.assert_close(scripted(x), logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(relevance.mean(dim=1), logits, rtol=0, atol=1e-6)
    with pytest.raises(BadConfigError, match=r"model\.pool"):
        CompactVideoNet(pool="median")


def test_motion_channel_sees_a_clip_that_is_constant_over_time_as_motionless() -> None:
    model = CompactVideoNet(motion_channel=True).eval()
    still = torch.rand(1, 1, 1, 32, 32).expand(1, 1, 8, 32, 32).contiguous()
    stem_conv = model.stem[0][0]
    assert stem_conv.in_channels == 2
    with torch.no_grad():
        stem_conv.weight[:, 1].fill_(1e3)  # only the difference channel would move the output
        a = model(still)
        stem_conv.weight[:, 1].fill_(-1e3)
        b = model(still)
    torch.testing.assert_close(a, b)
