"""The per-level preview (docs/synth_levels.png is made by it)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from labral.datasets.synth.preview import level_sheet


def test_level_sheet_has_a_row_pair_per_level(tmp_path: Path) -> None:
    path = level_sheet(tmp_path / "levels.png")
    image = Image.open(path)
    # 4 levels x (positive, twin) rows of 128-pixel frames, 6 frames a row
    assert image.height >= 8 * 128 and image.width >= 6 * 128
    assert path.stat().st_size < 600_000  # small enough for docs/
