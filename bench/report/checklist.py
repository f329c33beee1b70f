"""The TRIPOD+AI / CLAIM checklist section of report.html (:mod:`labral.bench.checklist`)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from labral.bench.checklist import checklist
from labral.report_html import table
from labral.reporting_topics import NOT_FILLED


def html_section(results: dict[str, Any]) -> list[str]:
    """The report's checklist section: every topic, filled or marked "not filled: <why>"."""
    stored = results.get("checklist")  # written by write_results; else made here
    rows = [(i["topic"], i["text"]) for i in stored] if stored else checklist(results)
    missing = sum(text.startswith(NOT_FILLED) for _, text in rows)
    note = (
        f"Reporting topics of TRIPOD+AI and CLAIM, filled from results.json and the bundles' "
        f"metadata (the bundle's model card uses the same topics); {missing} of {len(rows)} are "
        "marked 'not filled' with the reason."
    )
    return [
        "<h2>Reporting checklist (TRIPOD+AI / CLAIM)</h2>",
        f"<p class='note'>{html.escape(note)}</p>",
        table(["topic", "filled from this run"], rows),
    ]


def markdown_section(results: dict[str, Any], row: Callable[[Sequence[Any]], str]) -> list[str]:
    """The Markdown table of results.json's ``checklist`` (``row``: the Markdown row maker);
    nothing for a results.json written before the block existed."""
    items = results.get("checklist") or []
    if not items:
        return []
    header = ["topic", "filled from this run"]
    lines = [row(header), row(["---"] * len(header))]
    lines += [row([item["topic"], item["text"].replace("|", "/")]) for item in items]
    return ["Reporting checklist (TRIPOD+AI / CLAIM):", "", *lines, ""]
