"""The "Input check" tables of a results.json (``results.<model>.input_check``,
:mod:`labral.bench.refusals`): the one text form of each, for report.html, the terminal
summary, the Markdown tables and the demo's summary.

Each ``*_table`` function takes one model's ``input_check`` block and returns ``(header,
rows)`` of text cells (empty rows when the suite has nothing for that table).
"""

from __future__ import annotations

import html
from typing import Any

from labral.bench.bootstrap import format_with_ci as ci
from labral.datasets.synth.difficulty import known_levels
from labral.report_html import table

Table = tuple[list[str], list[list[str]]]

#: How to read the section (the report's note; bench/README.md says the same at length).
READING = (
    "Refusal rate: the share of a wrong-input kind the input check refused (the higher the "
    "better; target >= 0.95). False-refusal rate: the share of valid clips it refused (the "
    "lower the better; target <= 0.02). AUROC of the clips that pass beside all valid clips "
    "of each part: the check should leave the model's decisions as they were. Check scores: "
    "AUROC and FPR at 95% TPR of each detector's score, wrong inputs against valid clips; the "
    "held-out family is one the check never trained on. 95% CIs: patient bootstrap."
)


def level_order(part: str) -> tuple[int, str]:
    """Suite parts that are generator levels first, easiest first (``known_levels``)."""
    order = known_levels()
    return (order.index(part), part) if part in order else (len(order), part)


def _rate(block: dict[str, Any] | None) -> str:
    return ci(block) if block else "n/a"


def wrong_input_table(block: dict[str, Any]) -> Table:
    """kind, family, held out, n, refusal rate [CI], main reason: one row per wrong-input kind."""
    header = ["kind", "family", "held out", "n", "refusal rate [95% CI]", "main reason"]
    rows = [
        [
            kind,
            entry["family"] or "",
            "yes" if entry["held_out"] else "no",
            str(entry["n"]),
            _rate(entry["refusal_rate"]),
            entry["main_reason"] or "-",
        ]
        for kind, entry in block["wrong_input"].items()
    ]
    return header, rows


def valid_table(block: dict[str, Any]) -> Table:
    """level, n, false-refusal rate [CI], AUROC on all clips and on passing clips [CI]: one
    row per part of the valid clips, then all valid clips when there are several parts."""
    header = [
        "level",
        "n",
        "false-refusal rate [95% CI]",
        "AUROC all clips [95% CI]",
        "AUROC passing clips [95% CI]",
    ]
    parts = sorted(block["valid"].items(), key=lambda kv: level_order(kv[0]))
    if block.get("valid_overall"):
        parts.append(("all valid", block["valid_overall"]))
    rows = [
        [
            part,
            str(entry["n"]),
            _rate(entry["false_refusal_rate"]),
            ci(entry["all_clips"]["auroc"]),
            ci(entry["passing_clips"]["auroc"]),
        ]
        for part, entry in parts
    ]
    return header, rows


def _separation(entry: dict[str, Any]) -> list[str]:
    if entry.get("note"):
        return ["not estimable", "n/a"]
    fpr = entry["fpr_at_95_tpr"]
    return [ci(entry["auroc"]), "n/a" if fpr != fpr else f"{fpr:.3f}"]


def score_table(block: dict[str, Any]) -> Table:
    """score, AUROC [CI] and FPR at 95% TPR over all wrong inputs, then over the held-out
    family: one row per check score (none when not estimable: ``scores_note`` says why)."""
    header = [
        "check score",
        "AUROC [95% CI]",
        "FPR at 95% TPR",
        "held-out AUROC [95% CI]",
        "held-out FPR at 95% TPR",
    ]
    rows = [
        [reason, *_separation(entry["all"]), *_separation(entry["held_out"])]
        for reason, entry in block["scores"].items()
    ]
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain-text lines of a table, columns padded (the first left, the others right)."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        pairs = list(zip(cells, widths, strict=True))
        first, rest = pairs[0], pairs[1:]
        return "  ".join([first[0].ljust(first[1]), *(c.rjust(w) for c, w in rest)])

    return [line(header), *(line(r) for r in rows)]


def html_section(results: dict[str, Any]) -> list[str]:
    """report.html's "Input check" section: per model the wrong-input, valid and score tables
    (a note where the bundle has no check or the suite lacks one side)."""
    names = [m["name"] for m in results["models"]]
    blocks = {n: results["results"][n].get("input_check") for n in names}
    parts = ["<h2>Input check</h2>", f"<p class='note'>{html.escape(READING)}</p>"]
    for name, block in blocks.items():
        if len(names) > 1:
            parts.append(f"<h3>{html.escape(name)}</h3>")
        if not block:
            parts.append("<p class='note'>no input check results (an older results.json)</p>")
            continue
        if block["note"]:
            parts.append(f"<p class='note'>{html.escape(block['note'])}</p>")
        parts.append(
            f"<p class='note'>{block['n_refused']} of {block['n_clips']} clips refused "
            f"({block['n_wrong_input']} wrong inputs, {block['n_valid']} valid clips)</p>"
        )
        for title, (header, rows) in (
            ("Wrong inputs", wrong_input_table(block)),
            ("Valid clips", valid_table(block)),
            ("Check scores: wrong inputs against valid clips", score_table(block)),
        ):
            if rows:
                parts += [f"<h4>{title}</h4>", table(header, rows)]
        if block["scores_note"]:
            note = f"check scores: {block['scores_note']}"
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
    return parts
