"""Failure cases of a ``labral bench`` run: the most confident false positives and the most
missed false negatives at the bundle's operating threshold.

``labral bench`` puts them in report.html (:func:`html_section`; ``failure_cases=N`` cases of
each kind, 0 for none), with spatial maps computed for the cases shown. For a finished run::

    python -m labral.bench.failure_cases <run folder> [--model NAME] [--top 5]

reads the run's results.json (models, thresholds, suite hash) and predictions.csv (each
clip's probability, decision, relevance and facts) and writes ``failure_cases.html`` beside
them: for each case its key frame (the frame where the model's temporal relevance peaks;
the middle frame without relevance) with the spatial map over it where the run wrote
spatial_maps.npz (``+spatial_maps=true``), the relevance strip over the clip's frames, and the
clip's facts (truth, clip type, suite part, probability, frames, fps). False positives are
intact clips decided positive, highest probability first; false negatives detached clips
decided negative, lowest first. A patient is shown as a pseudonym (:func:`pseudonym`),
never by its manifest id or path. Clips refused by the input check are left out (the
service would not have answered on them).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from labral.bench.settings import BenchSettings  # noqa: E402
from labral.bench.suite_scoring import ClipSource, score_pass  # noqa: E402
from labral.bundle import Bundle  # noqa: E402
from labral.datasets.io import reader  # noqa: E402
from labral.datasets.io.clip import Clip  # noqa: E402
from labral.datasets.transforms.clip_ops import resize_frames  # noqa: E402
from labral.input_check.verdict import SCORED  # noqa: E402
from labral.report_html import CSS, png, table  # noqa: E402

#: cases of each kind shown: the ``failure_cases`` setting's default
TOP = int(BenchSettings.model_fields["failure_cases"].default)
KINDS = {"false_positive": "False positives", "false_negative": "False negatives"}


def pseudonym(patient: str, salt: str) -> str:
    """``"case-<8 hex>"``: SHA-256 of the suite hash and the patient id (stable within a
    suite; pseudonymous, not anonymous: whoever holds the manifest can recompute it)."""
    return "case-" + hashlib.sha256(f"{salt}:{patient}".encode()).hexdigest()[:8]


def relevance_of(row: dict[str, str], model: str) -> np.ndarray:
    """float64 (T_source,) the clip's relevance from predictions.csv (empty without one)."""
    text = row.get(f"relevance_{model}") or ""
    return np.array([float(v) for v in text.split(";") if v], dtype=np.float64)


def failures(rows: Sequence[dict[str, str]], model: str, top: int = TOP) -> dict[str, list[int]]:
    """Row indices of the ``top`` false positives (highest probability first) and false
    negatives (lowest first) by the model's own decision, refused clips left out."""
    p = np.array([float(r[f"p_{model}"]) for r in rows])
    label = np.array([int(r["label"]) for r in rows])
    decision = np.array([int(r[f"decision_{model}"]) for r in rows])
    scored = np.array([r.get(f"status_{model}", SCORED) in ("", SCORED) for r in rows])
    fp = np.flatnonzero(scored & (label == 0) & (decision == 1))
    fn = np.flatnonzero(scored & (label == 1) & (decision == 0))
    return {
        "false_positive": [int(i) for i in fp[np.argsort(-p[fp], kind="stable")][:top]],
        "false_negative": [int(i) for i in fn[np.argsort(p[fn], kind="stable")][:top]],
    }


def failure_block(
    results: dict[str, Any], rows: Sequence[dict[str, str]], top: int, model: str | None = None
) -> dict[str, Any]:
    """results.json's ``failure_cases``: the cases :func:`failures` picks, as facts.

    Args:
        results: the run's results (models, thresholds, suite hash). rows: predictions.csv's
            rows (or the same columns). top: cases of each kind. model: default the first.

    Returns:
        ``{"model", "threshold", "top", "false_positive": [...], "false_negative": [...]}``,
        each case ``{"row" (of predictions.csv), "patient" (pseudonym), "label",
        "probability", "clip_type", "part", "key_frame" (relevance peak; None without)}``.
    """
    entry = next(m for m in results["models"] if model in (None, m["name"]))
    name, salt = entry["name"], results["suite"]["content_hash"]

    def case(i: int) -> dict[str, Any]:
        row, relevance = rows[i], relevance_of(rows[i], name)
        return {
            "row": i,
            "patient": pseudonym(row["patient"], salt),
            "label": int(row["label"]),
            "probability": float(row[f"p_{name}"]),
            "clip_type": row.get("clip_type") or "",
            "part": row.get("shift") or "",
            "key_frame": int(np.argmax(relevance)) if relevance.size else None,
        }

    picked = failures(rows, name, top)
    return {
        "model": name,
        "threshold": entry["threshold"],
        "top": top,
        **{kind: [case(i) for i in indices] for kind, indices in picked.items()},
    }


def spatial_map(
    maps: dict[str, np.ndarray], model: int, clip: int, key: int
) -> tuple[int, np.ndarray] | None:
    """The clip's spatial map from spatial_maps.npz (``model<b>_clip<i>_frame<f>``): at the
    key frame where written, else at its first peak frame; None without one."""
    prefix = f"model{model}_clip{clip}_frame"
    frames = sorted(int(k[len(prefix) :]) for k in maps if k.startswith(prefix))
    if not frames:
        return None
    frame = key if key in frames else frames[0]
    return frame, maps[f"{prefix}{frame}"]


def first_model_maps(
    source: ClipSource, bundle: Bundle, transform: Callable[[dict], dict], rows: Sequence[int]
) -> dict[str, np.ndarray]:
    """Spatial maps of the first model on some clips, keyed as spatial_maps.npz
    (``model0_clip<i>_frame<f>``, on each clip's peak frames): for a run without
    ``+spatial_maps=true``, whose failure cases still show them.

    Args:
        source: the suite's clips. bundle, transform: the first model and its eval transform.
        rows: the suite indices (predictions.csv rows) of the clips to map.
    """
    if not rows:
        return {}
    passed = score_pass(
        source.subset(rows), [bundle], [transform], workers=0, spatial=True, check=False
    )
    return {
        f"model0_clip{rows[k]}_frame{m.frame}": m.values
        for k, clip in enumerate(passed.scores[0].clips)
        if clip is not None
        for m in clip.spatial_maps
    }


def case_figure(
    frames: np.ndarray,
    relevance: np.ndarray,
    title: str,
    spatial: tuple[int, np.ndarray] | None = None,
) -> str:
    """Key frame (with the spatial map over it where given) above the relevance strip.

    Args:
        frames: uint8 (T, H, W). relevance: float (T,) or (0,). spatial: (frame, float32
            (h, w) map at model input size); the frame is resized to the map's size.
    """
    key = int(np.argmax(relevance)) if relevance.size else frames.shape[0] // 2
    fig, (image_ax, strip_ax) = plt.subplots(
        2, 1, figsize=(3.2, 4.0), gridspec_kw={"height_ratios": [4, 1]}
    )
    if spatial is None:
        image_ax.imshow(frames[min(key, frames.shape[0] - 1)], cmap="gray")
        image_ax.set_title(f"{title}\nkey frame {key}", fontsize=7)
    else:
        frame, values = spatial
        image_ax.imshow(resize_frames(frames[frame][None], values.shape)[0], cmap="gray")
        image_ax.imshow(values, cmap="inferno", alpha=0.45)
        image_ax.set_title(f"{title}\nframe {frame}, spatial map", fontsize=7)
    image_ax.axis("off")
    if relevance.size:
        strip_ax.bar(np.arange(relevance.size), relevance, color="tab:orange", width=1.0)
        strip_ax.axvline(key, color="black", lw=0.8)
    strip_ax.set(xlim=(-0.5, max(relevance.size, 1) - 0.5), ylim=(0, 1.05), yticks=[])
    strip_ax.set_xlabel("frame (relevance)", fontsize=7)
    strip_ax.tick_params(labelsize=6)
    fig.tight_layout()
    return png(fig)


def _cases(
    rows: Sequence[dict[str, str]],
    model: tuple[int, str],
    indices: Sequence[int],
    salt: str,
    maps: dict[str, np.ndarray],
    read: Callable[[int], Clip],
) -> list[str]:
    """One figure per case (ranked) and a table of the cases' facts.

    Args:
        rows: predictions.csv's rows. model: (its index in results.json ``models``, its name).
        indices: the rows to show, in rank order. salt: the suite hash (pseudonyms).
        maps: spatial_maps.npz's arrays (or the same keys computed for these clips).
        read: row index -> the decoded clip.
    """
    index, name = model
    parts, facts = [], []
    for rank, i in enumerate(indices, 1):
        row, clip = rows[i], read(i)
        who = pseudonym(row["patient"], salt)
        relevance = relevance_of(row, name)
        key = int(np.argmax(relevance)) if relevance.size else clip.frames.shape[0] // 2
        spatial = spatial_map(maps, index, i, key)
        parts.append(case_figure(clip.frames, relevance, f"{rank}. {who}", spatial))
        facts.append(
            [
                rank,
                who,
                "detached" if int(row["label"]) else "intact",
                row.get("clip_type", ""),
                row.get("shift", "") or "-",
                f"{float(row[f'p_{name}']):.3f}",
                clip.frames.shape[0],
                f"{clip.fps:g}",
            ]
        )
    if facts:
        header = ["#", "patient", "truth", "clip type", "part", "probability", "frames", "fps"]
        parts.append(table(header, facts))
    return parts


def html_section(
    results: dict[str, Any],
    rows: Sequence[dict[str, str]],
    maps: dict[str, np.ndarray],
    read: Callable[[int], Clip],
    *,
    model: str | None = None,
    top: int = TOP,
) -> list[str]:
    """The failure cases of ``model`` (default: the first) as report HTML.

    Args:
        results: the run's results dict (models, thresholds, suite hash).
        rows: its predictions.csv rows. maps: spatial maps by spatial_maps.npz's keys ({}
            for none). read: row index -> the decoded clip. top: cases of each kind.
    """
    index, entry = next(
        (b, m) for b, m in enumerate(results["models"]) if model in (None, m["name"])
    )
    name, salt = entry["name"], results["suite"]["content_hash"]
    parts = [
        f"<h2>Failure cases of {html.escape(name)} at threshold {entry['threshold']:.3f}</h2>",
        "<p class='note'>The most confident errors at the bundle's own decision: false "
        "positives highest probability first, false negatives lowest first. Patients as "
        "pseudonyms (SHA-256 of suite hash and id). Key frame: where the temporal relevance "
        "peaks; below it the relevance strip. Clips refused by the input check are left out. "
        + (
            "Spatial maps (orange) at model input size.</p>"
            if maps
            else "No spatial maps: run labral bench with +spatial_maps=true for them.</p>"
        ),
    ]
    for kind, indices in failures(rows, name, top).items():
        parts.append(f"<h3>{KINDS[kind]} ({len(indices)} shown)</h3>")
        if not indices:
            parts.append("<p class='note'>None at this threshold.</p>")
        parts += _cases(rows, (index, name), indices, salt, maps, read)
    return parts


def render(run: Path, model: str | None = None, top: int = TOP) -> str:
    """The failure-case page of the run folder ``run`` for ``model`` (default: the first);
    clips are read again from predictions.csv's paths."""
    results = json.loads((run / "results.json").read_text())
    with open(run / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    npz = run / "spatial_maps.npz"
    maps = dict(np.load(npz)) if npz.is_file() else {}
    section = html_section(
        results, rows, maps, lambda i: reader.read_cine(rows[i]["path"]), model=model, top=top
    )
    return "\n".join(
        [
            f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style>",
            "<title>failure cases</title></head><body>",
            *section,
            "</body></html>",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``<run>/failure_cases.html``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a labral bench output folder")
    parser.add_argument("--model", default=None, help="a model name (default: the first)")
    parser.add_argument("--top", type=int, default=TOP)
    args = parser.parse_args(argv)
    out = args.run / "failure_cases.html"
    out.write_text(render(args.run, args.model, args.top))
    print(f"failure cases: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
