"""The compose labral runs every clip transform in: :class:`ClipCompose` (MONAI's
``Compose``, with labral's typed errors, an eager fast path and no needless generators) and
:class:`ClipPipeline` (a cacheable head, then a tail). The transforms and the two builders
are in :mod:`labral.datasets.transforms.clip_transforms`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import Compose, Randomizable
from monai.transforms.traits import LazyTrait

from labral.errors import LabralError


class ClipCompose(Compose):
    """MONAI ``Compose`` that lets labral's typed errors through.

    MONAI wraps any exception raised inside a transform in ``RuntimeError("applying
    transform ...")``; callers (the CLI, the service, the data set's skip list) need the
    original :class:`~labral.errors.LabralError` and its code, so it is re-raised unwrapped.
    ``len()`` counts this compose's own transforms: MONAI's builds a new ``Compose`` of
    them, which reseeds every random child.

    A data dict run eagerly (not lazy, not ``threading``: every call labral makes) goes
    through the transforms in a plain loop: MONAI's dispatch around each transform
    (pending lazy operations, item mapping, logging) has nothing to do for one dict of
    arrays and cost about 40 us per clip, a tenth of decoding an uncompressed one.
    """

    def __call__(  # noqa: D102 - the class docstring says what changes
        self,
        input_: Any,
        start: int = 0,
        end: int | None = None,
        threading: bool = False,
        lazy: bool | None = None,
    ) -> Any:
        eager = not (self.lazy if lazy is None else lazy)
        if eager and not threading and isinstance(input_, Mapping):
            for transform in self.transforms[start:end]:
                lazy_capable = isinstance(transform, LazyTrait)
                input_ = transform(input_, lazy=False) if lazy_capable else transform(input_)
            return input_
        try:
            return super().__call__(input_, start=start, end=end, threading=threading, lazy=lazy)
        except RuntimeError as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, LabralError):
                cause = cause.__cause__
            if cause is None:
                raise
            raise cause from None

    def __len__(self) -> int:
        return len(self.transforms)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> ClipCompose:
        """MONAI's seeding of every random child; a compose with none builds no generator
        (an evaluation pipeline built five, about 0.6 ms per data set)."""
        if not any(_draws_random(t) for t in self.transforms):
            return self
        return super().set_random_state(seed=seed, state=state)


def _draws_random(transform: Any) -> bool:
    """Whether ``transform`` uses a random generator: a random transform's own
    ``draws_random`` says (evaluation windows do not), a compose asks its children."""
    if isinstance(transform, Compose):
        return any(_draws_random(t) for t in transform.transforms)
    return isinstance(transform, Randomizable) and getattr(transform, "draws_random", True)


class ClipPipeline(ClipCompose):
    """A clip transform in two parts: the cacheable ``head``, then the ``tail``.

    ``pipeline(d)`` equals ``pipeline.tail(pipeline.head(d))``: the head's transforms are the
    first transforms of the pipeline (the same objects), so whatever caches the head's output
    and runs the tail gets exactly what the whole pipeline gives.

    Args:
        head: deterministic transforms from ``{"clip": source}`` to uint8 ``"frames"``
            (T', h, w), ``"frame_index"`` int64 (T',), ``"fps"``, ``"num_source_frames"``.
        tail: the transforms after it, ending with ``"image"`` float32.
    """

    def __init__(self, head: Sequence[Callable], tail: Sequence[Callable]) -> None:
        self.head = ClipCompose(list(head))
        self.tail = ClipCompose(list(tail))
        super().__init__([*self.head.transforms, *self.tail.transforms])
