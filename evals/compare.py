"""Compare two eval runs case by case; flag only regressions a paired bootstrap calls significant.

Runs are comparable only when they scored the same cases (dataset hash), over the same corpus,
with the same judge tier; anything else is refused unless forced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.dataset import COUNT_METRICS, EvalDataError, lower_is_better
from evals.runner import per_case_values
from evals.stats import Comparison, compare_runs

MUST_MATCH = ("dataset_hash", "corpus", "judge")


def load_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, json.JSONDecodeError) as exc:
        raise EvalDataError(f"{folder}: not an eval run folder ({exc})") from None
    return summary, [json.loads(line) for line in lines if line.strip()]


def incompatibilities(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{key} differs: {base.get(key)!r} vs {new.get(key)!r}"
        for key in MUST_MATCH
        if base.get(key) != new.get(key)
    ]


def compare(
    base_dir: Path, new_dir: Path, force: bool = False
) -> tuple[list[Comparison], list[str]]:
    """Per-metric comparisons and the reasons the runs are not comparable (empty if they are)."""
    base_summary, base_records = load_run(base_dir)
    new_summary, new_records = load_run(new_dir)
    reasons = incompatibilities(base_summary["manifest"], new_summary["manifest"])
    if reasons and not force:
        raise EvalDataError(
            "runs are not comparable (" + "; ".join(reasons) + "); pass --force to compare anyway"
        )
    base, new = per_case_values(base_records), per_case_values(new_records)
    direction = {name: not lower_is_better(name) and not _count_metric(name) for name in base}
    return compare_runs(base, new, direction), reasons


def _count_metric(name: str) -> bool:
    """Audit counts (problems per answer): fewer is better."""
    return name in COUNT_METRICS


def render(comparisons: list[Comparison]) -> str:
    lines = [f"{'metric':24} {'base':>8} {'new':>8} {'delta':>8} {'95% CI':>19} {'n':>4}  verdict"]
    for c in comparisons:
        if c.delta is None:
            lines.append(
                f"{c.metric:24} {'':>8} {'':>8} {'':>8} {'':>19} {c.n_paired:>4}  no pairs"
            )
            continue
        ci = f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if c.ci_low is not None else "–"
        if c.regression and lower_is_better(c.metric):
            verdict = "slower (reported, not gated)"
        elif c.regression:
            verdict = "REGRESSION"
        else:
            verdict = "better" if c.significant else "no change"
        lines.append(
            f"{c.metric:24} {c.base_mean:8.3f} {c.new_mean:8.3f} {c.delta:+8.3f} {ci:>19} "
            f"{c.n_paired:>4}  {verdict}"
        )
    return "\n".join(lines)
