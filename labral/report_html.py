"""HTML building blocks of labral's reports (``labral bench``, ``labral curve``): the style
sheet, an embedded PNG and an escaped table."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: The one style sheet of every report (readable from file://: nothing external).
CSS = """
body{font-family:sans-serif;margin:24px;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #bbb;padding:3px 8px;
font-size:13px;text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:4px}.note{color:#555;font-size:13px}
"""


def png(fig: plt.Figure) -> str:
    """The figure as an inline ``<img>`` (PNG, base64); closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; every header and cell is escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
