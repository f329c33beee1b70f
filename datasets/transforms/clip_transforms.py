"""MONAI dictionary transforms from a decoded cine clip to the model's input tensor.

The data dictionary that flows through these transforms:

- ``"clip"``: a :class:`~labral.datasets.io.clip.Clip` (set by :class:`LoadCined` from a path,
  ``bytes`` or a uint8 array; a ``Clip`` passes through unchanged).
- ``"frames"``: uint8 (T, H, W) working frames; (N, T, H, W) after evaluation sampling.
- ``"frame_index"``: int64, same leading shape as ``"frames"``: the source-frame index of
  every working frame (so relevance can be mapped back onto the original clip).
- ``"fps"``: frame rate of the working frames; ``"num_source_frames"``: T of the original clip.
- ``"image"``: float32 tensor (1, T, H, W) for training or (N, 1, T, H, W) for evaluation,
  values in [0, 1] (set by :class:`ToClipTensord`, which removes ``"frames"``).

Both pipelines are built from the JSON spec ``{"frames", "fps", "size", "windows"}`` carried
inside the exported bundle (optional ``"crop"``: fractions ``[top, bottom, left, right]``
removed before resizing), and both are a :class:`ClipPipeline`: one deterministic, cacheable
head followed by a tail::

    head (both):   LoadCined -> ResampleFPSd -> ResizeClipd        uint8 "frames" (T', h, w)
    eval tail:     SampleFramesd(windows) -> ToClipTensord (scales uint8)   (N, 1, T, h, w)
    train tail:    SampleFramesd(random) -> augmentations -> ToClipTensord    (1, T, h, w)

:func:`build_eval_transform` (serve, bench, training-time evaluation) and
:func:`build_train_transform` are the only builders. The head is literally the first
transforms of each (``pipeline.head``); :mod:`labral.datasets.cache` stores its output and
:class:`~labral.datasets.clip_dataset.ClipDataset` runs ``pipeline.tail`` on it, so a cached
item goes through exactly the transform the bundle carries.

The index and resize helpers (``resample_indices``, ``window_indices``,
``evenly_spaced_starts``, ``resize_frames``) live in
:mod:`labral.datasets.transforms.clip_ops` and are
re-exported here; ``relevance_to_source_frames`` (model-frame relevance back onto the
source clip) lives there too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform, Randomizable, Transform

from labral.datasets.io import reader as cine_reader
from labral.datasets.io.clip import Clip
from labral.datasets.transforms.augment import build_augmentations

# resample_indices: re-exported (module docstring)
from labral.datasets.transforms.clip_ops import (
    evenly_spaced_starts,
    resample_indices,  # noqa: F401
    resample_selection,
    resize_frames,
    window_indices,
)
from labral.datasets.transforms.compose import ClipPipeline
from labral.datasets.transforms.scaling import KeysLike, ScaleUint8
from labral.errors import BadConfigError

Reader = Callable[[Any], Clip]

SPEC_KEYS = ("frames", "fps", "size", "windows")


def check_spec(spec: Mapping[str, Any], where: str = "eval_transform") -> dict[str, Any]:
    """Validate an eval spec and return a normalised plain copy.

    Args:
        spec: ``{"frames": int >= 1, "fps": float > 0, "size": [H, W] ints >= 8,
            "windows": int >= 1}``, optional ``"crop": [top, bottom, left, right]`` fractions.
        where: prefix used to name the setting in error messages.

    Returns:
        dict with ``frames`` int, ``fps`` float, ``size`` [int, int], ``windows`` int and
        ``crop`` (list of 4 floats or None).

    Raises:
        BadConfigError: a key is missing or a value is out of range (the message names it).
    """
    missing = [key for key in SPEC_KEYS if key not in spec]
    if missing:
        raise BadConfigError(f"{where}: missing {missing}; expected keys {list(SPEC_KEYS)}")
    try:
        frames, fps, windows = int(spec["frames"]), float(spec["fps"]), int(spec["windows"])
        size = [int(v) for v in spec["size"]]
        crop = spec.get("crop")
        crop = None if crop is None else [float(v) for v in crop]
    except (TypeError, ValueError) as exc:
        raise BadConfigError(f"{where}: non-numeric value in {dict(spec)} ({exc})") from exc
    if frames < 1:
        raise BadConfigError(f"{where}.frames must be >= 1, got {frames}")
    if not (fps > 0 and math.isfinite(fps)):
        raise BadConfigError(f"{where}.fps must be a positive number, got {fps}")
    if len(size) != 2 or min(size) < 8:
        raise BadConfigError(f"{where}.size must be [H, W] with both >= 8, got {size}")
    if windows < 1:
        raise BadConfigError(f"{where}.windows must be >= 1, got {windows}")
    if crop is not None and (
        len(crop) != 4 or min(crop) < 0 or crop[0] + crop[1] >= 1 or crop[2] + crop[3] >= 1
    ):
        raise BadConfigError(
            f"{where}.crop must be [top, bottom, left, right] fractions >= 0 that leave part of "
            f"the image (top + bottom < 1, left + right < 1), got {crop}"
        )
    return {"frames": frames, "fps": fps, "size": size, "windows": windows, "crop": crop}


class ResizeClip(Transform):
    """Array transform: uint8 (..., H, W) -> uint8 (..., h, w), antialiased bilinear.

    The same resize is applied to every frame. ``crop`` ([top, bottom, left, right] fractions)
    is removed first.
    """

    def __init__(self, size: Sequence[int], crop: Sequence[float] | None = None) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.crop = None if crop is None else tuple(float(v) for v in crop)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Args: frames uint8 (..., H, W). Returns: uint8 (..., h, w)."""
        if self.crop is not None:
            height, width = frames.shape[-2:]
            top, bottom, left, right = self.crop
            r0, r1 = int(round(top * height)), height - int(round(bottom * height))
            c0, c1 = int(round(left * width)), width - int(round(right * width))
            frames = frames[..., r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]
        return resize_frames(frames, self.size)


class LoadCined(MapTransform):
    """Read ``data[key]`` (path, bytes or uint8 array) into a Clip and start the working frames.

    Sets ``"clip"`` (Clip), ``"frames"`` uint8 (T, H, W), ``"frame_index"`` int64 (T,),
    ``"fps"`` and ``"num_source_frames"``.

    Raises:
        LabralError: whatever the reader raises for a bad file (not DICOM, corrupt, ...).
    """

    def __init__(self, keys: KeysLike = "clip", reader: Reader | None = None) -> None:
        super().__init__(keys)
        self.reader = reader

    def _read(self, source: Any) -> Clip:
        if isinstance(source, Clip):
            return source
        if self.reader is not None:
            return self.reader(source)
        return cine_reader.read_cine(source)  # looked up per call: a test may patch the reader

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            clip = self._read(d[key])
            d[key] = clip
            d["frames"] = clip.frames
            d["frame_index"] = np.arange(clip.num_frames, dtype=np.int64)
            d["fps"] = float(clip.fps)
            d["num_source_frames"] = clip.num_frames
        return d


class ResampleFPSd(MapTransform):
    """Nearest-frame resampling of ``keys`` (T, H, W) from ``data["fps"]`` to ``target_fps``.

    ``"frame_index"`` is indexed the same way, so it keeps naming source frames.
    """

    def __init__(self, keys: KeysLike = "frames", target_fps: float = 10.0) -> None:
        super().__init__(keys)
        self.target_fps = float(target_fps)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        take = resample_selection(d[keys[0]].shape[0], d["fps"], self.target_fps)
        for key in keys:
            d[key] = d[key][take]
        d["frame_index"] = np.asarray(d["frame_index"])[take]
        d["fps"] = self.target_fps
        return d


class ResizeClipd(MapTransform):
    """Dictionary version of :class:`ResizeClip`: every key (..., H, W) -> (..., h, w)."""

    def __init__(
        self,
        keys: KeysLike = "frames",
        size: Sequence[int] = (96, 96),
        crop: Sequence[float] | None = None,
    ) -> None:
        super().__init__(keys)
        self.resizer = ResizeClip(size, crop)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer(d[key])
        return d


class SampleFramesd(Randomizable, MapTransform):
    """Pick a fixed number of frames from ``keys`` (T, H, W); ``"frame_index"`` follows.

    Modes:
        ``"random"`` (training): one window at a random start -> (length, H, W).
        ``"windows"`` (evaluation): ``windows`` evenly spaced windows (one = the centre
        window) -> (N, length, H, W); ``"frame_index"`` becomes (N, length).
    A clip shorter than ``length`` repeats its last frame. One evaluation window of
    consecutive frames is a view of the input (the next transform, :class:`ToClipTensord`,
    makes the new array); training windows are copies, since augmentations follow.
    """

    def __init__(
        self, keys: KeysLike = "frames", length: int = 16, mode: str = "windows", windows: int = 1
    ) -> None:
        MapTransform.__init__(self, keys)
        if mode not in ("random", "windows"):
            raise BadConfigError(f"SampleFramesd.mode must be 'random' or 'windows', got {mode}")
        self.length, self.mode, self.windows = int(length), mode, int(windows)
        self._start = 0

    @property
    def draws_random(self) -> bool:
        """Training windows draw their start; evaluation windows are fixed."""
        return self.mode == "random"

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> SampleFramesd:
        """MONAI's seeding in training mode; evaluation windows draw nothing, so no generator
        is built (numpy takes about 0.1 ms for one)."""
        if not self.draws_random:
            return self
        return super().set_random_state(seed=seed, state=state)

    def randomize(self, data: int) -> None:
        """Draw the window start for a clip of ``data`` frames (training mode)."""
        self._start = int(self.R.randint(0, max(0, data - self.length) + 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        num = d[keys[0]].shape[0]
        if self.mode == "windows" and self.windows == 1 and num >= self.length:
            # the centred window of consecutive frames: views (ToClipTensord makes the copy)
            (start,) = evenly_spaced_starts(num, self.length, 1)
            take = slice(start, start + self.length)
            for key in keys:
                d[key] = d[key][take][None]
            d["frame_index"] = np.asarray(d["frame_index"])[take][None]
            return d
        if self.mode == "random":
            self.randomize(num)
            index = window_indices(num, self.length, [self._start])[0]
        else:
            index = window_indices(
                num, self.length, evenly_spaced_starts(num, self.length, self.windows)
            )
        for key in keys:
            d[key] = d[key][index]
        d["frame_index"] = np.asarray(d["frame_index"])[index]
        return d


class ToClipTensord(MapTransform):
    """``"frames"`` (T, H, W) or (N, T, H, W) -> ``"image"`` float32 (1, T, H, W) / (N, 1, T, H, W).

    Float frames must already lie in [0, 1] (``scaling.ScaleUint8d`` and every augmentation
    clip to it); uint8 frames are scaled here by :class:`ScaleUint8`. Also turns
    ``"frame_index"`` into an int64 tensor. ``"frames"`` is removed.
    """

    def __init__(self, keys: KeysLike = "frames", output_key: str = "image") -> None:
        super().__init__(keys)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            frames = d.pop(key)
            if frames.dtype == np.uint8:  # not scaled yet: scale here
                frames = ScaleUint8()(frames)
            frames = np.ascontiguousarray(frames, dtype=np.float32)  # in [0, 1]: see ScaleUint8
            d[self.output_key] = torch.from_numpy(frames).unsqueeze(-4)
        d["frame_index"] = torch.as_tensor(np.asarray(d["frame_index"]), dtype=torch.int64)
        return d


def _cacheable_head(spec: dict[str, Any], reader: Reader | None) -> list[Callable]:
    """load -> resample to ``spec["fps"]`` -> resize to ``spec["size"]`` (after ``crop``)."""
    return [
        LoadCined("clip", reader=reader),
        ResampleFPSd("frames", target_fps=spec["fps"]),
        ResizeClipd("frames", size=spec["size"], crop=spec["crop"]),
    ]


def build_eval_transform(spec: Mapping[str, Any], reader: Reader | None = None) -> ClipPipeline:
    """The evaluation transform, deterministic; the bundle stores ``spec``, not code.

    Args:
        spec: ``{"frames", "fps", "size", "windows"}`` (see :func:`check_spec`).
        reader: ``source -> Clip``; default :func:`labral.datasets.io.reader.read_cine`.

    Returns:
        :class:`ClipPipeline` mapping ``{"clip": Clip | path | bytes | array, ...}`` to the
        same dict plus ``"image"`` float32 tensor (N, 1, T, H, W) in [0, 1] and
        ``"frame_index"`` int64 tensor (N, T) of source-frame indices (N = ``spec["windows"]``
        evenly spaced windows; one window is centred). Its ``head`` (load, resample, resize)
        is what :class:`labral.datasets.cache.ClipCache` stores.

    Raises:
        BadConfigError: an invalid spec (the message names the key).
    """
    spec = check_spec(spec)
    tail = [
        SampleFramesd("frames", length=spec["frames"], mode="windows", windows=spec["windows"]),
        ToClipTensord("frames"),
    ]
    return ClipPipeline(_cacheable_head(spec, reader), tail)


def build_train_transform(
    spec: Mapping[str, Any],
    augment: Mapping[str, Any] | None,
    seed: int | None = None,
    reader: Reader | None = None,
) -> ClipPipeline:
    """The training transform: the eval head (same fps and size), a random window, augmentation.

    Args:
        spec: the eval spec; ``windows`` is ignored (one random window).
        augment: the ``augment`` config mapping (see ``configs/transforms/default.yaml``).
        seed: seeds every random transform (``Compose.set_random_state``) when given.
        reader: ``source -> Clip``; default :func:`labral.datasets.io.reader.read_cine`.

    Returns:
        :class:`ClipPipeline` adding ``"image"`` float32 tensor (1, T, H, W) in [0, 1] and
        ``"frame_index"`` int64 tensor (T,); its ``head`` is the eval transform's.

    Raises:
        BadConfigError: an invalid spec or augmentation setting (named in the message).
    """
    spec = check_spec(spec)
    tail = [
        SampleFramesd("frames", length=spec["frames"], mode="random"),
        *build_augmentations(augment or {}, keys="frames"),
        ToClipTensord("frames"),
    ]
    pipeline = ClipPipeline(_cacheable_head(spec, reader), tail)
    if seed is not None:  # after composing: Compose.__init__ reseeds its children
        pipeline.set_random_state(seed=seed)
    return pipeline
