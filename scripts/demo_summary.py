"""Print the main job's headline: test AUROC of the default model beside the still-frame
baseline (from training), the same pair on the synthetic-id benchmark, and where things are.

Usage: python scripts/demo_summary.py <demo root> <elapsed seconds>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labral.bench.metrics import format_with_ci


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def main(root: Path, elapsed_s: int) -> None:
    bench = _load(root / "bench" / "results.json")
    by_name = {m["name"]: m for m in bench.get("models", [])}
    print(f"labral demo finished in {elapsed_s // 60} min {elapsed_s % 60} s\n")
    print(f"{'model':<14}{'test AUROC (train split)':>26}{'synthetic-id AUROC [95% CI]':>34}")
    for model in ("compact", "still_frame"):
        test = _load(root / f"train_{model}" / "test_metrics.json")
        spec = _load(root / "bundles" / model / "metadata.json")
        name = spec.get("model_name", "")
        overall = bench.get("results", {}).get(name, {}).get("overall", {}).get("auroc", {})
        ci = format_with_ci(overall)
        test_auroc = f"{test['auroc']:.3f}" if "auroc" in test else "n/a"
        print(f"{model:<14}{test_auroc:>26}{ci:>34}")
    if not by_name:
        print("(no benchmark results found)")
    print(f"\nbundles: {root / 'bundles'}")
    print(f"report:  {root / 'bench' / 'report.html'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
