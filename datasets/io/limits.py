"""Size limits checked from a file's header before any pixel data is decoded."""

from __future__ import annotations

from dataclasses import dataclass

from labral.errors import OverLimitError


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds a reader enforces before it allocates or decodes pixels.

    Attributes:
        max_frames: most frames a clip may declare (or a video may yield).
        max_rows: most rows (image height in pixels).
        max_cols: most columns (image width in pixels).
        max_bytes: most bytes for the input itself and for its decoded native pixels
            (frames x rows x cols x samples x bytes per sample).
    """

    max_frames: int = 2000
    max_rows: int = 2048
    max_cols: int = 2048
    max_bytes: int = 1 << 31

    def check_input_size(self, num_bytes: int) -> None:
        """Reject an input file or buffer larger than ``max_bytes``.

        Raises:
            OverLimitError: if ``num_bytes > max_bytes``.
        """
        if num_bytes > self.max_bytes:
            raise OverLimitError(
                f"the input is {num_bytes} bytes, over the limit of {self.max_bytes} bytes "
                "(ReadLimits.max_bytes); split or downsample the clip, or raise the limit"
            )

    def check_shape(
        self, frames: int, rows: int, cols: int, samples: int = 1, bytes_per_sample: int = 1
    ) -> None:
        """Check a declared clip shape against every limit.

        Args:
            frames: declared number of frames T.
            rows: declared rows H.
            cols: declared columns W.
            samples: samples per pixel (1 grey, 3 colour).
            bytes_per_sample: 1 for 8-bit, 2 for 16-bit data.

        Raises:
            OverLimitError: naming the first limit exceeded and its value.
        """
        checks = (
            ("frames", frames, self.max_frames, "max_frames"),
            ("rows", rows, self.max_rows, "max_rows"),
            ("columns", cols, self.max_cols, "max_cols"),
        )
        for what, value, limit, name in checks:
            if value > limit:
                raise OverLimitError(
                    f"the clip declares {value} {what}, over the limit of {limit} "
                    f"(ReadLimits.{name}); trim or downsample the clip, or raise the limit"
                )
        decoded = int(frames) * int(rows) * int(cols) * int(samples) * int(bytes_per_sample)
        if decoded > self.max_bytes:
            raise OverLimitError(
                f"the decoded clip would take {decoded} bytes, over the limit of "
                f"{self.max_bytes} (ReadLimits.max_bytes); trim the clip or raise the limit"
            )
