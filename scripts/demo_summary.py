"""Print the main job's headline: test AUROC of the cleft recipe
(``train_<model>/test_metrics.json``: the test split of the data set it trained on, scored
when training ends), its AUROC per level of the synthetic-graded benchmark,
the cleft model's margin over the shortcut study's strongest nulls per level
(``docs/shortcut_study.json``, written by ``python -m labral.datasets.synth.shortcuts
--patients 160 --json``), its input check on synthetic-graded (false refusals, AUROC of the
clips that pass) and on the synthetic-wrong-input benchmark (refusal rate per wrong-input
kind), and where things are. Metrics are printed by
:func:`labral.bench.bootstrap.format_with_ci` and the input check's tables by
:mod:`labral.bench.report.input_check`, as in ``python -m labral.bench.markdown``.

Usage: python scripts/demo_summary.py <demo root> <elapsed seconds>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from labral.bench.bootstrap import format_with_ci
from labral.bench.report.input_check import text_table, valid_table, wrong_input_table
from labral.datasets.synth.difficulty import known_levels
from labral.datasets.synth.shortcuts import read_strongest_nulls

#: The demo's bench folders under its root: the graded benchmark and the wrong-input one.
GRADED, WRONG_INPUT = "bench", "bench_wrong_input"
#: The demo's models (its nulls are the shortcut study's, printed beside them).
MODELS = ("cleft",)
#: The shortcut study's published figures (docs/generator.md's table).
SHORTCUT_STUDY = Path(__file__).resolve().parents[1] / "docs" / "shortcut_study.json"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _check_block(bench: dict[str, Any], name: str) -> dict[str, Any] | None:
    """``name``'s input_check block in a results.json (the first model's if not there)."""
    results = bench.get("results", {})
    block = results.get(name) or next(iter(results.values()), {})
    return block.get("input_check")


def print_input_check(root: Path, name: str) -> None:
    """The default model's input check: false refusals on synthetic-graded, then refusals
    per wrong-input kind on synthetic-wrong-input."""
    graded = _check_block(_load(root / GRADED / "results.json"), name)
    wrong = _check_block(_load(root / WRONG_INPUT / "results.json"), name)
    if graded and graded["note"]:
        print(f"\ninput check: {graded['note']}")
    if graded:
        print("\ncleft: input check on synthetic-graded (valid clips: should refuse <= 2%)")
        print("\n".join(text_table(*valid_table(graded))))
    if wrong and wrong["wrong_input"]:
        print("\ncleft: input check on synthetic-wrong-input (should refuse >= 95%)")
        print("\n".join(text_table(*wrong_input_table(wrong))))
    else:
        print("\n(no wrong-input benchmark results found)")


def print_null_margins(per_level: dict[str, Any], levels: list[str]) -> None:
    """The cleft model's graded AUROC minus the shortcut study's strongest null per level
    (given the cleft and the loading trace, and from pixels only)."""
    if not per_level or not SHORTCUT_STUDY.is_file():
        return
    nulls = read_strongest_nulls(SHORTCUT_STUDY)
    print("\ncleft: margin over the shortcut study's strongest null (AUROC difference)")
    print(f"{'level':<10}{'model':>8}{'null':>8}{'margin':>9}{'null, pixels':>14}{'margin':>9}")
    for level in levels:
        auroc = per_level.get(level, {}).get("auroc", {}).get("value")
        if auroc is None or level not in nulls:
            continue
        oracle, pixels = nulls[level]["oracle"], nulls[level]["pixels"]
        print(
            f"{level:<10}{auroc:>8.3f}{oracle:>8.3f}{auroc - oracle:>+9.3f}"
            f"{pixels:>14.3f}{auroc - pixels:>+9.3f}"
        )


def main(root: Path, elapsed_s: int) -> None:
    bench = _load(root / GRADED / "results.json")
    print(f"labral demo finished in {elapsed_s // 60} min {elapsed_s % 60} s\n")
    results = bench.get("results", {})
    parts = {part for r in results.values() for part in r.get("per_shift", {})}
    levels = [level for level in known_levels() if level in parts]
    header = f"{'model':<14}{'test AUROC':>12}" + "".join(f"{lvl:>24}" for lvl in levels)
    print(f"{header}\n{'':<14}{'(test split)':>12}   synthetic-graded AUROC [95% CI] per level")
    names = {}
    for model in MODELS:
        test = _load(root / f"train_{model}" / "test_metrics.json")
        names[model] = _load(root / "bundles" / model / "metadata.json").get("model_name", "")
        per_level = results.get(names[model], {}).get("per_shift", {})
        cells = "".join(
            f"{format_with_ci(per_level.get(lvl, {}).get('auroc')):>24}" for lvl in levels
        )
        test_auroc = f"{test['auroc']:.3f}" if "auroc" in test else "n/a"
        print(f"{model:<14}{test_auroc:>12}{cells}")
    if not results:
        print("(no benchmark results found)")
    print_null_margins(results.get(names["cleft"], {}).get("per_shift", {}), levels)
    print_input_check(root, names["cleft"])
    print(f"\nbundles: {root / 'bundles'}")
    print(f"report:  {root / GRADED / 'report.html'}")
    print(f"input check report: {root / WRONG_INPUT / 'report.html'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
