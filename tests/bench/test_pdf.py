"""report.pdf: printed by headless Chromium; a clear message without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from labral.bench import command, pdf
from tests.bench.test_saved_predictions import cohort, write_csv

PAGE = "<!doctype html><html><body><h1>labral benchmark</h1><p>net benefit</p></body></html>"


def test_pdf_starts_with_the_pdf_magic(require_tool, tmp_path: Path) -> None:
    require_tool("chromium")
    html = tmp_path / "report.html"
    html.write_text(PAGE)
    written = pdf.write_pdf(html)
    assert written == (tmp_path / "report.pdf").resolve()
    assert written.read_bytes().startswith(b"%PDF")


def test_without_chromium_a_message_and_no_pdf(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    html = tmp_path / "report.html"
    html.write_text(PAGE)
    assert pdf.write_pdf(html) is None
    assert pdf.main([str(html)]) == 1
    assert "no PDF: headless Chromium" in capsys.readouterr().err
    assert not (tmp_path / "report.pdf").exists() and html.is_file()


def test_labral_bench_writes_report_pdf(require_tool, compose_bench, tmp_path: Path) -> None:
    require_tool("chromium")
    saved = write_csv(tmp_path / "cv" / "oof_predictions.csv", cohort())
    command.run(compose_bench(tmp_path, [f"predictions={saved}", "pdf=true"]))
    assert (tmp_path / "out" / "report.html").is_file()
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(pdf.PDF_MAGIC)
