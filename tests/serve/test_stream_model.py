"""The compact net's stream buffers (models/streaming.py) and a session that uses them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from labral.bundle import input_spec_from, write_bundle
from labral.datasets.io.reader import read_cine
from labral.models.compact import CompactVideoNet
from labral.models.streaming import StreamingCompactNet, _Residual, _TemporalConv, streaming_net_of
from labral.serve.stream.engines import StepEngine
from labral.train.export_formats import RelevanceModule

SPEC = {"frames": 16, "fps": 10.0, "size": [32, 32], "windows": 1}


def small_net(seed: int = 0) -> CompactVideoNet:
    """A small compact net in eval mode with non-trivial norm statistics."""
    torch.manual_seed(seed)
    net = CompactVideoNet(widths=(8, 16, 16, 24)).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return net


def stream_window(net, x: torch.Tensor) -> list[float]:
    """Stream the frames of x (1, 1, T, H, W) and flush: the per-step head values."""
    streaming = StreamingCompactNet(net)
    steps = [v for t in range(x.shape[2]) for v in streaming.push(x[0, 0, t])]
    return steps + streaming.flush()


@pytest.mark.parametrize("scripted", [False, True])
def test_streaming_one_window_then_flushing_is_the_window_forward(scripted):
    net = small_net()
    x = torch.rand(1, 1, 16, 32, 32)
    with torch.inference_mode():
        logit, relevance = net.forward_with_relevance(x)
    module = torch.jit.script(RelevanceModule(net)) if scripted else net
    steps = stream_window(streaming_net_of(module), x)
    assert len(steps) == 16 // 4
    assert np.allclose(np.repeat(steps, 4), relevance[0].numpy(), atol=1e-5)
    assert abs(np.mean(steps) - float(logit)) < 1e-5


def test_peek_is_the_window_ending_now_and_leaves_the_stream_unchanged():
    net = small_net()
    frames = torch.rand(28, 32, 32)
    peeking, plain = StreamingCompactNet(net), StreamingCompactNet(net)
    with_peeks, without = [], []
    for t in range(frames.shape[0]):
        with_peeks += peeking.push(frames[t])
        peeking.peek()
        without += plain.push(frames[t])
    assert with_peeks == without  # peeking changed nothing
    engine = StepEngine(net, frames=16)
    for t in range(16):
        engine.push(frames[t], t)
    logit, relevance = engine.evaluate()
    with torch.inference_mode():
        window_logit, window_relevance = net.forward_with_relevance(frames[None, None, :16])
    assert abs(logit - float(window_logit)) < 1e-5  # no lag: the whole window is scored
    assert np.allclose([relevance[t] for t in range(16)], window_relevance[0], atol=1e-5)


def test_without_peek_the_running_value_lags_the_kernels_look_ahead():
    net = small_net()
    lagging = StepEngine(net, frames=16, peek=False)
    ready = []
    for t in range(40):
        lagging.push(torch.rand(32, 32), t)
        ready.append(lagging.evaluate()[0] is not None)
    # 4 completed steps need frames 0..15 plus the 9-frame look-ahead of the 7 temporal convs
    assert ready.index(True) == 15 + 9


def test_the_compact_net_is_found_inside_every_runtime_of_a_bundle():
    net = small_net()
    scripted = torch.jit.script(RelevanceModule(net))
    onnx_session = SimpleNamespace(differentiable=scripted)  # OnnxRuntimeForward's twin
    assert streaming_net_of(net) is net
    assert streaming_net_of(scripted) is not None
    assert streaming_net_of(onnx_session) is not None
    assert streaming_net_of(SimpleNamespace(differentiable=None)) is None


def test_work_per_frame_is_a_fraction_of_a_window_and_memory_is_constant():
    net = small_net()
    x = torch.rand(1, 1, 16, 32, 32)
    with FlopCounterMode(display=False) as window:
        with torch.inference_mode():
            net.forward_with_relevance(x)
    streaming = StreamingCompactNet(net)
    for _ in range(24):  # fill every buffer first
        streaming.push(torch.rand(32, 32))
    with FlopCounterMode(display=False) as stream:
        for _ in range(32):
            streaming.push(torch.rand(32, 32))
    per_frame = stream.get_total_flops() / 32
    # every layer runs once per time step: a 16-frame window's work divided by 16
    assert per_frame * 16 == pytest.approx(window.get_total_flops(), rel=0.01)
    for node in streaming.nodes:
        parts = node.main if isinstance(node, _Residual) else [node]
        for part in parts:
            if isinstance(part, _TemporalConv):
                assert len(part.buffer) <= 3
        if isinstance(node, _Residual):
            assert len(node.waiting) <= 4


@pytest.fixture(scope="module")
def compact_bundle(tmp_path_factory) -> Path:
    spec = {
        "model_name": "compact-small-random",
        "class_names": ["intact", "detachment"],
        "eval_transform": SPEC,
        "input_spec": input_spec_from(SPEC),
        "temperature": 1.0,
        "threshold": 0.5,
    }
    module = torch.jit.script(RelevanceModule(small_net()))
    return write_bundle(tmp_path_factory.mktemp("compact"), module, spec, onnx=False)


def test_a_session_on_the_compact_net_streams_and_ends_as_offline(
    make_client, compact_bundle, clips
):
    client = make_client(bundle=compact_bundle, runtime="torchscript")
    data = clips["bright.dcm"].read_bytes()
    clip = read_cine(data)
    frames = np.concatenate([clip.frames, clip.frames[::-1], clip.frames])  # 3x the clip
    height, width = frames.shape[1:]
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_json({"type": "open", "fps": clip.fps, "height": height, "width": width})
        assert ws.receive_json()["engine"] == "streaming"
        updates = []
        for frame in frames:
            ws.send_bytes(frame.tobytes())
            updates.append(ws.receive_json())
        ws.send_json({"type": "close"})
        result = ws.receive_json()
    running = [u["probability"] for u in updates if u["probability"] is not None]
    assert running and all(0 <= p <= 1 for p in running)
    assert updates[-1]["relevance"]
    recorded = read_cine(frames, default_fps=clip.fps)
    offline = client.app.state.service.scorer.score(recorded)
    assert abs(result["probability"] - offline.probability) <= 1e-6
