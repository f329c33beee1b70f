"""``model.init_weights``: labral checkpoints and torchvision's Kinetics files, loaded locally.

The torchvision file is written here in torchvision's own format (a randomly initialised
``torchvision.models.video.<arch>(weights=None)``'s state dict): nothing downloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from torchvision.models import video

from labral.errors import BadConfigError
from labral.models.compact import CompactVideoNet
from labral.models.still_frame import StillFrameNet
from labral.models.video_resnet import VideoResNet
from labral.models.weights import load_init_weights
from labral.train.parts import build_model

SMALL = {"widths": [4, 8, 8], "temporal_strides": [1, 2]}


@pytest.mark.parametrize("arch", ["r2plus1d_18", "mc3_18"])
def test_torchvision_kinetics_file_loads_into_the_one_channel_net(arch, tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = getattr(video, arch)(weights=None).eval()
    path = tmp_path / f"{arch}-kinetics.pth"
    torch.save(source.state_dict(), path)
    model = VideoResNet(arch=arch).eval()

    report = load_init_weights(model, path)

    total = len(model.state_dict())
    assert (report.loaded, report.total) == (total - 2, total)
    assert report.missing == ["head.linear.weight", "head.linear.bias"]
    assert report.unexpected == ["fc.weight", "fc.bias"]  # the Kinetics classifier
    assert report.adapted == ["stem.0.weight"] and report.source == "torchvision video ResNet"
    ours, theirs = model.state_dict(), source.state_dict()
    assert torch.equal(ours["stem.0.weight"], theirs["stem.0.weight"].sum(1, keepdim=True))
    for key, value in theirs.items():  # layer<i> -> layers.<i-1>; every tensor but fc
        if key.startswith("layer"):
            mapped = f"layers.{int(key[5]) - 1}{key[6:]}"
            assert torch.equal(ours[mapped], value), key
    # a grey clip gets the response the RGB net gives the same frames on all three channels
    x = torch.rand(1, 1, 4, 16, 16)
    with torch.no_grad():
        expected = source.layer1(source.stem(x.repeat(1, 3, 1, 1, 1)))
        got = model.layers[0](model.stem(x))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    printed = str(report)
    assert f"loaded {total - 2} of the model's {total} tensors" in printed
    assert "missing 2 (head.linear.weight, head.linear.bias)" in printed
    assert "unexpected 2 (fc.weight, fc.bias)" in printed


def test_labral_checkpoint_with_ddp_prefixes(tmp_path: Path) -> None:
    torch.manual_seed(2)
    trained = CompactVideoNet(**SMALL)
    state = {f"module.{k}": v for k, v in trained.state_dict().items()}
    path = tmp_path / "best.pt"
    torch.save({"model": state, "epoch": 3, "config": {"seed": 1}}, path)
    fresh = CompactVideoNet(**SMALL)

    report = load_init_weights(fresh, path)

    assert report.source == "labral checkpoint" and report.missing == report.unexpected == []
    assert report.loaded == report.total == len(trained.state_dict())
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_shape_mismatch_names_the_first_layer_and_both_shapes(tmp_path: Path) -> None:
    path = tmp_path / "wide.pt"
    torch.save(CompactVideoNet(**SMALL).state_dict(), path)
    narrow = CompactVideoNet(widths=[2, 8, 8], temporal_strides=[1, 2])
    first = next(iter(narrow.state_dict()))
    want = tuple(narrow.state_dict()[first].shape)
    have = tuple(CompactVideoNet(**SMALL).state_dict()[first].shape)
    with pytest.raises(BadConfigError) as caught:
        load_init_weights(narrow, path)
    assert f"layer {first!r} is {want} in the model but {have} in the file" in caught.value.message
    assert caught.value.message.startswith(f"model.init_weights={path}")


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "compact.pt"
    torch.save(CompactVideoNet(**SMALL).state_dict(), path)
    with pytest.raises(BadConfigError, match="no tensor of the file fits the model"):
        load_init_weights(StillFrameNet(widths=[4, 8]), path)


def test_missing_and_unsafe_files_are_refused(tmp_path: Path) -> None:
    model = CompactVideoNet(**SMALL)
    with pytest.raises(BadConfigError, match="no such file.*nothing downloads"):
        load_init_weights(model, tmp_path / "absent.pth")
    pickled = tmp_path / "object.pt"
    torch.save({"model": model}, pickled)  # a whole module: weights_only=True refuses it
    with pytest.raises(BadConfigError, match="weights_only=True"):
        load_init_weights(model, pickled)
    (tmp_path / "text.pt").write_text("not a tensor file")
    with pytest.raises(BadConfigError, match="not a weights file"):
        load_init_weights(model, tmp_path / "text.pt")


def test_train_builds_the_model_from_init_weights(tmp_path: Path, capsys) -> None:
    """``labral train model.init_weights=PATH`` loads the file where the model is built."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="labral.configs", version_base="1.3"):
        plain = compose(config_name="train", overrides=["model=compact"])
        assert plain.model.init_weights is None  # the default: start from scratch
        torch.manual_seed(3)
        start = build_model(plain)
        path = tmp_path / "start.pt"
        torch.save({"model": start.state_dict()}, path)
        cfg = compose(
            config_name="train", overrides=["model=compact", f"model.init_weights={path}"]
        )
    torch.manual_seed(4)
    model = build_model(cfg)
    for key, value in start.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    printed = capsys.readouterr().out
    assert f"init_weights: loaded {len(start.state_dict())} of the model's" in printed


def test_a_model_rebuilt_from_its_run_config_never_reads_the_file() -> None:
    """``labral export`` rebuilds the net from the checkpoint's config, which keeps the key."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    for target in ("compact.CompactVideoNet", "still_frame.StillFrameNet"):
        node = {"_target_": f"labral.models.{target}", "init_weights": "/gone/start.pt"}
        assert isinstance(instantiate(OmegaConf.create(node)), torch.nn.Module)
