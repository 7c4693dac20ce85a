"""Calibrate the abstention thresholds on labelled questions (no LLM needed).

  python benchmarks/calibrate.py --examples            # the examples suite over examples/articles
  python benchmarks/calibrate.py --rtqa-home DIR       # RealTime QA dev over an ingested home

For every question it records the relevance of the retrieved passages (best dense similarity,
IDF-weighted term coverage) and whether some retrieved article meets the question's named
constraints (``answering.constraints``: the near-miss check, which abstains whatever the
relevance), then scans both thresholds and prints, for each dataset, the share of
should-abstain questions that abstain (recall) and the share of answered questions that were
answerable (precision) at the chosen and the best points, with and without the near-miss check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.answering import constraints
from assistant.answering.question import shape
from assistant.desk import Desk
from assistant.index.retriever import Relevance
from assistant.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "benchmarks" / "realtimeqa"


Case = tuple[str, bool, list[str]]  # question, answerable, choices


def examples_cases() -> tuple[Path, list[Case]]:
    """The examples suite's questions that stand alone (follow-ups need their history)."""
    from ingest.pipeline import ingest_paths

    home = Path(tempfile.mkdtemp(prefix="newsdesk-cal-"))
    ingest_paths([str(ROOT / "examples" / "articles")], load_settings(home=home))
    cases = []
    suite = ROOT / "evals" / "suites" / "examples" / "cases.jsonl"
    for line in suite.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row.get("history"):
            cases.append((row["question"], not row.get("must_abstain"), row.get("choices", [])))
    return home, cases


def rtqa_cases() -> list[Case]:
    rows = [json.loads(x) for x in (RTQA / "questions.dev.jsonl").read_text().splitlines()]
    return [(r["question"], bool(r["in_corpus"]), r["choices"]) for r in rows]


Row = tuple[Relevance, bool, bool]  # relevance, constraints met, answerable


def measure(home: Path, cases: list[Case]) -> list[Row]:
    """Retrieval as ``ask`` does it (question plus options), relevance of the question."""
    search = Desk(load_settings(home=home)).search_engine
    out = []
    for question, answerable, choices in cases:
        found = search.retrieve(" ".join([question, *choices]))
        met = constraints.check(shape(question), question, found.passages).met
        out.append((search.relevance(question, found.passages, found.lexical), met, answerable))
    return out


NEAR_MISS = True  # apply the near-miss check (main() scans both)


def score(rows: list[Row], t: float, w: float) -> tuple[float, float, float]:
    """(abstain recall on unanswerable, precision of answered, answer rate on answerable)."""
    abstain = [not r.enough(t, w) or (NEAR_MISS and not met) for r, met, _ in rows]
    unans = [a for a, (_, _, ok) in zip(abstain, rows, strict=True) if not ok]
    answered = [ok for a, (_, _, ok) in zip(abstain, rows, strict=True) if not a]
    ans = [not a for a, (_, _, ok) in zip(abstain, rows, strict=True) if ok]
    recall = sum(unans) / len(unans) if unans else float("nan")
    precision = sum(answered) / len(answered) if answered else float("nan")
    rate = sum(ans) / len(ans) if ans else float("nan")
    return recall, precision, rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", action="store_true")
    parser.add_argument("--rtqa-home", type=Path)
    parser.add_argument("--dump", type=Path, help="write per-question relevance as JSONL")
    args = parser.parse_args()
    global NEAR_MISS
    datasets: dict[str, list[Row]] = {}
    if args.examples:
        home, cases = examples_cases()
        datasets["examples"] = measure(home, cases)
    if args.rtqa_home:
        datasets["realtimeqa-dev"] = measure(args.rtqa_home, rtqa_cases())
    if args.dump:
        with args.dump.open("w") as fh:
            for name, rows in datasets.items():
                for r, met, ok in rows:
                    fh.write(json.dumps({"set": name, "dense": r.dense, "coverage": r.coverage,
                                         "met": met, "answerable": ok}) + "\n")  # fmt: skip
    defaults = load_settings()
    grid = [(t / 100, w / 2) for t in range(40, 250, 2) for w in range(0, 7)]
    print(f"defaults: min_score={defaults.abstain_min_score} "
          f"dense_weight={defaults.abstain_dense_weight}")  # fmt: skip
    for NEAR_MISS in (False, True):
        print(f"-- near-miss check {'on' if NEAR_MISS else 'off'}")
        for name, rows in datasets.items():
            r, p, a = score(rows, defaults.abstain_min_score, defaults.abstain_dense_weight)
            print(f"{name:15} n={len(rows)} at defaults: abstain recall={r:.2f} "
                  f"answered precision={p:.2f} answer rate={a:.2f}")  # fmt: skip

    # best point: abstain recall >= 0.8 on every dataset with an unanswerable question, then
    # the highest summed answer rate
    def fitness(point: tuple[float, float]) -> tuple[bool, float]:
        results = [score(rows, *point) for rows in datasets.values()]
        recall_ok = all(r >= 0.8 for r, _, _ in results[-1:])  # the largest set: last given
        return recall_ok, sum(a for _, _, a in results)

    best = max(grid, key=fitness)
    print(f"best point: min_score={best[0]:.2f} dense_weight={best[1]:.1f}")
    for name, rows in datasets.items():
        r, p, a = score(rows, *best)
        print(f"{name:15} abstain recall={r:.2f} answered precision={p:.2f} answer rate={a:.2f}")


if __name__ == "__main__":
    main()
