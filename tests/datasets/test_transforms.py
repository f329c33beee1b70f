"""Eval/train transforms: shapes, dtypes, fps resampling indices, determinism, relevance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labral.datasets.io.clip import Clip
from labral.datasets.transforms.clip_ops import relevance_to_source_frames
from labral.datasets.transforms.clip_transforms import (
    LoadCined,
    ResampleFPSd,
    ResizeClipd,
    ToClipTensord,
    build_eval_transform,
    build_train_transform,
    check_spec,
    resample_indices,
)
from labral.datasets.transforms.scaling import ScaleUint8
from labral.errors import BadConfigError, CorruptPixelDataError

SPEC = {"frames": 8, "fps": 10.0, "size": [24, 32], "windows": 1}


def ramp_clip(frames: int = 32, fps: float = 20.0, height: int = 48, width: int = 64) -> Clip:
    """Every frame is flat with value 4 * t, so pixel values identify the source frame."""
    values = (np.arange(frames) * 4 % 256).astype(np.uint8)
    return Clip(np.broadcast_to(values[:, None, None], (frames, height, width)).copy(), fps)


def test_resample_indices_pick_nearest_source_frames():
    assert resample_indices(32, 20.0, 10.0).tolist() == list(range(0, 32, 2))
    assert resample_indices(30, 30.0, 10.0).tolist() == list(range(0, 30, 3))
    assert resample_indices(31, 20.0, 10.0).tolist() == list(range(0, 31, 2))  # 16 frames
    # 25 -> 10 fps: times 0, 0.1, 0.2 s -> source frames 0, 2.5 (rounds up), 5
    assert resample_indices(10, 25.0, 10.0).tolist() == [0, 3, 5, 8]
    # upsampling repeats frames and never runs past the end
    assert resample_indices(4, 5.0, 10.0).tolist() == [0, 1, 1, 2, 2, 3, 3, 3]


def test_eval_output_shapes_dtypes_and_range():
    out = build_eval_transform(SPEC)({"clip": ramp_clip()})
    image, index = out["image"], out["frame_index"]
    assert image.shape == (1, 1, 8, 24, 32) and image.dtype == torch.float32
    assert index.shape == (1, 8) and index.dtype == torch.int64
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    # 32 frames at 20 fps -> 16 at 10 fps (0, 2, ..., 30); centre window of 8 starts at 4
    assert index[0].tolist() == [8, 10, 12, 14, 16, 18, 20, 22]
    # each model frame shows its source frame's value (4 * t) / 255
    expected = (index[0].float() * 4 / 255)[:, None, None].expand(8, 24, 32)
    assert torch.allclose(image[0, 0], expected, atol=1e-6)
    assert "frames" not in out


def test_eval_windows_evenly_spaced_and_deterministic():
    spec = {**SPEC, "windows": 3}
    transform = build_eval_transform(spec)
    first = transform({"clip": ramp_clip()})
    second = transform({"clip": ramp_clip()})
    assert first["image"].shape == (3, 1, 8, 24, 32)
    assert first["frame_index"][:, 0].tolist() == [0, 8, 16]  # starts 0, 4, 8 at 10 fps
    assert torch.equal(first["image"], second["image"])
    assert torch.equal(first["frame_index"], second["frame_index"])


def test_short_clip_repeats_last_frame():
    out = build_eval_transform(SPEC)({"clip": ramp_clip(frames=6, fps=10.0)})
    assert out["frame_index"][0].tolist() == [0, 1, 2, 3, 4, 5, 5, 5]


def test_resize_is_antialiased_average():
    frames = np.zeros((2, 40, 40), np.uint8)
    frames[:, :, ::2] = 200  # fine stripes: a non-antialiased resize would alias them
    out = build_eval_transform({"frames": 2, "fps": 10, "size": [10, 10], "windows": 1})(
        {"clip": Clip(frames, 10.0)}
    )
    image = out["image"].numpy()[0, 0]
    assert np.allclose(image[:, :, 1:-1], 100 / 255, atol=1 / 255)  # interior: the mean
    assert np.allclose(image, 100 / 255, atol=8 / 255)  # edges: filter support clipped


@pytest.mark.parametrize("count", [1, 3, 4, 6, 9])
def test_uint8_resize_four_frames_at_a_time_equals_one_at_a_time(count):
    from torch.nn.functional import interpolate

    from labral.datasets.transforms.clip_ops import resize_frames

    rng = np.random.default_rng(count)
    for shape, size in [((60, 70), (96, 96)), ((128, 128), (96, 96)), ((41, 37), (16, 20))]:
        frames = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
        alone = [
            interpolate(torch.from_numpy(f)[None, None], size=size, mode="bilinear", antialias=True)
            for f in frames
        ]
        got = resize_frames(frames, size)
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, torch.cat(alone)[:, 0].numpy())


def test_uint8_resize_of_a_strided_view_equals_resize_of_its_copy():
    """A crop taken every other frame (what the reader and fps resampling hand over) is
    packed straight from the view, with the values of a contiguous copy."""
    from labral.datasets.transforms.clip_ops import resize_frames

    big = np.random.default_rng(7).integers(0, 256, (23, 90, 80), dtype=np.uint8)
    view = big[::2, 5:75, 3:70]  # 12 frames, neither contiguous nor aligned
    np.testing.assert_array_equal(
        resize_frames(view, (48, 40)), resize_frames(np.ascontiguousarray(view), (48, 40))
    )


def test_optional_crop_removes_border_before_resize():
    frames = np.zeros((4, 40, 40), np.uint8)
    frames[:, 30:, :] = 255  # bright bottom quarter
    spec = {**SPEC, "frames": 4, "size": [10, 10], "crop": [0.0, 0.25, 0.0, 0.0]}
    out = build_eval_transform(spec)({"clip": Clip(frames, 10.0)})
    assert float(out["image"].max()) == 0.0


def test_train_has_eval_geometry_and_is_seeded():
    clip = ramp_clip()
    train = build_train_transform(SPEC, augment={}, seed=3)
    out = train({"clip": clip})
    assert out["image"].shape == (1, 8, 24, 32) and out["frame_index"].shape == (8,)
    index = out["frame_index"].numpy()
    assert np.all(index % 2 == 0) and np.all(np.diff(index) == 2)  # same 10 fps grid as eval
    expected = torch.from_numpy(index * 4 / 255).float()[:, None, None].expand(8, 24, 32)
    assert torch.allclose(out["image"][0], expected, atol=1e-6)
    starts = {
        int(build_train_transform(SPEC, {}, seed=s)({"clip": clip})["frame_index"][0])
        for s in range(12)
    }
    assert len(starts) > 2  # random windows
    again = build_train_transform(SPEC, augment={}, seed=3)({"clip": clip})
    assert torch.equal(again["frame_index"], out["frame_index"])


def test_cacheable_head_is_a_prefix_of_both_pipelines():
    spec = {**SPEC, "windows": 3, "crop": [0.1, 0.0, 0.0, 0.2]}
    augment = {"gain": {"prob": 1.0, "db": [-6, 6]}}
    for pipeline in (build_eval_transform(spec), build_train_transform(spec, augment, seed=1)):
        head = pipeline.head.transforms
        assert [type(t) for t in head] == [LoadCined, ResampleFPSd, ResizeClipd]
        assert pipeline.transforms[: len(head)] == head  # the same objects, first in line
        assert pipeline.transforms[len(head) :] == pipeline.tail.transforms
    clip = ramp_clip(frames=40)
    eval_pipeline = build_eval_transform(spec)
    whole = eval_pipeline({"clip": clip})
    split = eval_pipeline.tail(eval_pipeline.head({"clip": clip}))
    assert torch.equal(whole["image"], split["image"])
    assert torch.equal(whole["frame_index"], split["frame_index"])
    train_head = build_train_transform(spec, augment).head({"clip": clip})
    eval_head = eval_pipeline.head({"clip": clip})
    assert np.array_equal(train_head["frames"], eval_head["frames"])  # one head, one cache


def test_len_does_not_reseed_a_seeded_pipeline():
    # MONAI's Compose.__len__ builds a new Compose, which reseeds every random child
    augment = {"gain": {"prob": 1.0, "db": [-6, 6]}}
    clip = ramp_clip()
    want = build_train_transform(SPEC, augment, seed=5)({"clip": clip})["image"]
    pipeline = build_train_transform(SPEC, augment, seed=5)
    assert len(pipeline) == len(pipeline.head) + len(pipeline.tail) == 7
    assert torch.equal(pipeline({"clip": clip})["image"], want)


def test_load_from_path_with_reader(tmp_path):
    path = tmp_path / "clip.npy"
    np.save(path, ramp_clip().frames)

    def reader(source):
        if str(source).endswith("bad.npy"):
            raise CorruptPixelDataError(f"{source}: truncated")
        return Clip(np.load(source), 20.0)

    out = build_eval_transform(SPEC, reader=reader).head({"clip": str(path)})
    assert out["frames"].shape == (16, 24, 32) and out["frames"].dtype == np.uint8
    assert out["num_source_frames"] == 32 and out["fps"] == 10.0
    with pytest.raises(CorruptPixelDataError):
        build_eval_transform(SPEC, reader=reader)({"clip": str(tmp_path / "bad.npy")})


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"frames": 0}, "frames"),
        ({"fps": -1}, "fps"),
        ({"size": [4, 96]}, "size"),
        ({"windows": 0}, "windows"),
        ({"crop": [0.6, 0.5, 0, 0]}, "crop"),
    ],
)
def test_bad_spec_names_the_setting(bad, name):
    with pytest.raises(BadConfigError, match=rf"eval_transform\.{name}"):
        check_spec({**SPEC, **bad})
    with pytest.raises(BadConfigError, match="missing"):
        check_spec({"frames": 8})


def test_relevance_maps_back_with_max_and_nearest():
    relevance = np.array([[0.1, 0.5, 0.2], [0.9, 0.3, 0.0]], np.float32)
    index = np.array([[0, 2, 4], [2, 4, 6]])
    out = relevance_to_source_frames(relevance, index, 9)
    # frame 2: max(0.5, 0.9); frame 4: max(0.2, 0.3); frame 6: 0.0; gaps take the nearest,
    # ties go to the earlier frame; frames 7, 8 take frame 6
    assert out.dtype == np.float32
    assert np.allclose(out, [0.1, 0.1, 0.9, 0.9, 0.3, 0.3, 0.0, 0.0, 0.0])
    torch_out = relevance_to_source_frames(torch.tensor(relevance), torch.tensor(index), 9)
    assert np.array_equal(out, torch_out)
    with pytest.raises(ValueError):
        relevance_to_source_frames(relevance, np.array([[0, 2, 40], [1, 2, 3]]), 9)


def test_relevance_roundtrip_through_eval_transform():
    spec = {**SPEC, "windows": 2}
    out = build_eval_transform(spec)({"clip": ramp_clip()})
    relevance = out["frame_index"].float() / 31  # relevance grows with source time
    mapped = relevance_to_source_frames(relevance, out["frame_index"], 32)
    assert mapped.shape == (32,)
    sampled = out["frame_index"].flatten().unique().numpy()
    assert np.allclose(mapped[sampled], sampled / 31, atol=1e-6)
    assert np.all(np.diff(mapped) >= 0)


def test_default_reader_reads_npy_and_typed_errors_pass_through(tmp_path):
    from labral.errors import NotDicomError

    path = tmp_path / "clip.npy"
    np.save(path, ramp_clip().frames)
    out = build_eval_transform(SPEC)({"clip": str(path)})  # read_cine, stated default fps
    assert out["image"].shape == (1, 1, 8, 24, 32)
    assert isinstance(out["clip"], Clip) and out["clip"].num_frames == 32
    with pytest.raises(NotDicomError):
        build_eval_transform(SPEC)({"clip": b"this is not a cine clip at all" * 8})


@pytest.mark.parametrize(
    "index", [[0, 2, 4, 6], [3], [1, 2, 3], [0, 0, 1, 1], [0, 2, 3, 5], [5, 3, 1], []]
)
def test_as_slice_selects_the_same_frames_as_the_index(index):
    """Evenly spaced, increasing indices become a slice (a view); others stay an index."""
    from labral.datasets.transforms.clip_ops import as_slice

    frames = np.arange(8 * 2 * 2).reshape(8, 2, 2)
    index = np.asarray(index, dtype=np.int64)
    take = as_slice(index)
    np.testing.assert_array_equal(frames[take], frames[index])
    regular = len(index) > 0 and (len(index) == 1 or (np.diff(index) == index[1] - index[0]).all())
    assert isinstance(take, slice) == bool(regular and (len(index) == 1 or index[1] > index[0]))


def test_uint8_scaling_in_the_tensor_step_equals_scale_uint8_for_every_level():
    """ToClipTensord scales in torch, ScaleUint8 (training) in numpy: the same 256 values,
    and the input frames (a cached item's array) are left as they were."""
    levels = np.arange(256, dtype=np.uint8).reshape(1, 4, 8, 8)
    kept = levels.copy()
    image = ToClipTensord()({"frames": levels, "frame_index": np.zeros((1, 4))})["image"]
    np.testing.assert_array_equal(image.numpy()[:, 0], ScaleUint8()(levels))
    np.testing.assert_array_equal(levels, kept)
    image[...] = 0  # the tensor owns its memory
    np.testing.assert_array_equal(levels, kept)


def test_an_eval_pipeline_builds_no_random_generator_and_training_still_seeds(monkeypatch):
    """numpy takes about 0.1 ms per RandomState: an eval pipeline (nothing random in it)
    builds none; a seeded training pipeline draws the same windows as before."""
    built = []
    original = np.random.RandomState

    def counting(*args, **kwargs):
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(np.random, "RandomState", counting)
    build_eval_transform(SPEC)
    assert built == []
    first = build_train_transform(SPEC, {}, seed=5)({"clip": ramp_clip()})["frame_index"]
    second = build_train_transform(SPEC, {}, seed=5)({"clip": ramp_clip()})["frame_index"]
    assert built and torch.equal(first, second)


@pytest.mark.parametrize(
    ("frames", "fps"), [(32, 20.0), (31, 30.0), (7, 10.0), (33, 40.0), (10, 25.0)]
)
def test_fps_resampling_takes_the_frames_resample_indices_names(frames, fps):
    """Whole-number rate ratios are taken as a slice; the frames must be the same."""
    out = ResampleFPSd("frames", target_fps=10.0)(
        {
            "frames": np.arange(frames, dtype=np.uint8)[:, None, None],
            "fps": fps,
            "frame_index": np.arange(frames),
        }
    )
    expected = resample_indices(frames, fps, 10.0)
    assert out["frame_index"].tolist() == expected.tolist()
    assert out["frames"][:, 0, 0].tolist() == expected.tolist()
