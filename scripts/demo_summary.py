"""Print the main job's headline: test AUROC of the default model beside the still-frame
baseline (``train_<model>/test_metrics.json``: the test split of the data set they trained
on, scored when training ends), the same pair per level of the synthetic-graded benchmark,
and where things are. AUROCs are printed by :func:`labral.bench.bootstrap.format_with_ci`,
as in ``python -m labral.bench.markdown``.

Usage: python scripts/demo_summary.py <demo root> <elapsed seconds>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labral.bench.bootstrap import format_with_ci
from labral.datasets.synth.difficulty import known_levels


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def main(root: Path, elapsed_s: int) -> None:
    bench = _load(root / "bench" / "results.json")
    print(f"labral demo finished in {elapsed_s // 60} min {elapsed_s % 60} s\n")
    results = bench.get("results", {})
    parts = {part for r in results.values() for part in r.get("per_shift", {})}
    levels = [level for level in known_levels() if level in parts]
    header = f"{'model':<14}{'test AUROC':>12}" + "".join(f"{lvl:>24}" for lvl in levels)
    print(f"{header}\n{'':<14}{'(test split)':>12}   synthetic-graded AUROC [95% CI] per level")
    for model in ("compact", "still_frame"):
        test = _load(root / f"train_{model}" / "test_metrics.json")
        name = _load(root / "bundles" / model / "metadata.json").get("model_name", "")
        per_level = results.get(name, {}).get("per_shift", {})
        cells = "".join(
            f"{format_with_ci(per_level.get(lvl, {}).get('auroc')):>24}" for lvl in levels
        )
        test_auroc = f"{test['auroc']:.3f}" if "auroc" in test else "n/a"
        print(f"{model:<14}{test_auroc:>12}{cells}")
    if not results:
        print("(no benchmark results found)")
    print(f"\nbundles: {root / 'bundles'}")
    print(f"report:  {root / 'bench' / 'report.html'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
