"""report.pdf from report.html with headless Chromium, where Chromium is installed.

    python -m labral.bench.pdf <run>/report.html [--out <run>/report.pdf]

Chromium prints the self-contained report (no network: every figure is a data URI) with
``--headless --print-to-pdf``. The binary is ``chromium`` or ``chromium-browser``
(:data:`CHROMIUM_NAMES`); without one, a clear message says so and nothing else changes (the
HTML report stays the document). ``labral bench`` calls :func:`bench_pdf` after writing
report.html, as its ``pdf`` setting asks (``auto``, ``true`` or ``false``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from labral.errors import BadConfigError

CHROMIUM_NAMES = ("chromium", "chromium-browser")
NO_CHROMIUM = (
    "no PDF: headless Chromium (chromium or chromium-browser) is not on PATH; "
    "report.html is the report (apt-get install chromium for report.pdf)"
)
PDF_MAGIC = b"%PDF"
#: How labral runs headless Chromium on a self-contained page (no network, no profile state,
#: no sandbox: CI containers run as root); the caller adds the profile folder and the output.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def find_chromium() -> str | None:
    """The first of :data:`CHROMIUM_NAMES` on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def write_pdf(html: Path, pdf: Path | None = None, timeout: float = 120.0) -> Path | None:
    """Print ``html`` to ``pdf`` (default: beside it, ``.pdf``); None without Chromium.

    Raises:
        RuntimeError: Chromium ran but wrote no PDF (its stderr is quoted).
    """
    chromium = find_chromium()
    if chromium is None:
        print(NO_CHROMIUM, file=sys.stderr)
        return None
    target = (pdf or html.with_suffix(".pdf")).resolve()
    with tempfile.TemporaryDirectory(prefix="labral-chromium-") as profile:
        run = subprocess.run(
            [
                chromium,
                *HEADLESS_FLAGS,
                "--no-pdf-header-footer",
                f"--user-data-dir={profile}",
                f"--print-to-pdf={target}",
                html.resolve().as_uri(),
            ],
            timeout=timeout,
            capture_output=True,
            text=True,
        )
    if not target.is_file() or target.read_bytes()[:4] != PDF_MAGIC:
        raise RuntimeError(f"chromium wrote no PDF (exit {run.returncode}): {run.stderr[-500:]}")
    return target


def check_pdf_setting(mode: Literal["auto"] | bool) -> None:
    """Refuse ``pdf=true`` without Chromium before any clip is scored.

    Raises:
        BadConfigError: ``pdf=true`` and no Chromium on PATH.
    """
    if mode is True and find_chromium() is None:
        raise BadConfigError(f"pdf=true: {NO_CHROMIUM}; or run with pdf=auto or pdf=false")


def bench_pdf(html: Path, mode: Literal["auto"] | bool) -> Path | None:
    """``labral bench``'s PDF step for its ``pdf`` setting: nothing for false; the PDF for
    true (errors raised); for auto the PDF where Chromium is found, else the
    :data:`NO_CHROMIUM` message, and a Chromium that fails is reported, not raised (the HTML
    stays the report).

    Raises:
        RuntimeError: ``pdf=true`` and Chromium wrote no PDF.
    """
    if mode is False:
        return None
    if mode is True:
        return write_pdf(html)
    try:
        return write_pdf(html)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"no PDF: {error}; report.html is the report", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Write the PDF; 0 when written, 1 without Chromium."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    written = write_pdf(args.html, args.out)
    if written is not None:
        print(f"pdf: {written}")
    return 0 if written is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
