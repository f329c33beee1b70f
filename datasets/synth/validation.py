"""Checks shared by the synthetic generator's settings: ranges, messages, output folders.

Every refused setting becomes one :class:`labral.errors.BadConfigError` whose message names
the key the way the command line writes it (``clip.frames=2: ...``), so a user can fix it.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import ListConfig
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from labral.errors import BadConfigError


@dataclass(frozen=True)
class Bounds:
    """An inclusive ``[low, high]`` setting within ``[lowest, highest]``.

    Used as ``Annotated[tuple[float, float], Bounds(0.0, 1.0)]``: a single number ``v``
    means ``[v, v]``; both ends must be numbers (whole numbers when ``whole``), low <= high.
    """

    lowest: float
    highest: float
    whole: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def check(self, value: Any) -> tuple[Any, Any]:
        """The checked ``(low, high)`` pair (raises ``ValueError`` saying what is wrong)."""
        pair = list(value) if isinstance(value, list | tuple | ListConfig) else [value, value]
        if len(pair) != 2 or not all(_is_number(v) for v in pair):
            raise ValueError("must be a number or an inclusive [low, high] pair")
        if self.whole and any(int(v) != v for v in pair):
            raise ValueError("must be whole numbers")
        low, high = pair
        if low > high:
            raise ValueError("low must not exceed high")
        if low < self.lowest or high > self.highest:
            raise ValueError(f"outside what can be drawn [{self.lowest}, {self.highest}]")
        return low, high


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_writable(setting: str, folder: Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written there.

    Raises:
        BadConfigError: the folder cannot be created or written (names ``setting``).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise BadConfigError(
            f"{setting}={str(folder)!r}: output folder is not writable "
            f"({error.strerror or error}); choose a folder you can write to"
        ) from error
    return folder
