"""Does the answer lead with what was asked? Scores eval runs after the fact.

  python benchmarks/answer_first.py runs/before/results.jsonl runs/after/results.jsonl

For each ``results.jsonl`` (written by ``newsdesk eval run``) and the answered, answerable
cases in it: answer recall (a gold answer anywhere in the answer), answer-first (in its first
sentence; ``evals.metrics.answer_first``) and answer-in-lead (in its first paragraph, the
lead), plus the abstention numbers. Runs made by older code (without the ``answer_first``
score) are scored the same way, so before/after compare like with like.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evals import metrics as m


def score(path: Path) -> dict[str, float | int]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows = [r for r in rows if not r.get("error")]
    answered = [r for r in rows if not r["must_abstain"] and not r["abstained"] and r["answers"]]
    recall = [m.answer_recall(r["answer"], r["answers"]).value or 0.0 for r in answered]
    first = [m.answer_first(r["answer"], r["answers"]).value or 0.0 for r in answered]
    lead = [
        m.answer_recall(r["answer"].split("\n\n")[0], r["answers"]).value or 0.0 for r in answered
    ]
    unanswerable = [r for r in rows if r["must_abstain"]]
    said = [r for r in rows if not r["abstained"]]
    answerable = [r for r in rows if not r["must_abstain"]]
    return {
        "cases": len(rows),
        "answered_with_gold": len(answered),
        "answer_recall": sum(recall) / len(answered) if answered else float("nan"),
        "answer_first": sum(first) / len(answered) if answered else float("nan"),
        "answer_in_lead": sum(lead) / len(answered) if answered else float("nan"),
        "abstain_recall": (
            sum(r["abstained"] for r in unanswerable) / len(unanswerable)
            if unanswerable else float("nan")
        ),
        "answered_precision": (
            sum(not r["must_abstain"] for r in said) / len(said) if said else float("nan")
        ),
        "answer_rate": (
            sum(not r["abstained"] for r in answerable) / len(answerable)
            if answerable else float("nan")
        ),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    names = list(score(args.results[0]))
    print("| run | " + " | ".join(names) + " |")
    print("| --- " * (len(names) + 1) + "|")
    for path in args.results:
        values = score(path)
        shown = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in values.values()]
        print(f"| {path.parent.name} | " + " | ".join(shown) + " |")


if __name__ == "__main__":
    main()
