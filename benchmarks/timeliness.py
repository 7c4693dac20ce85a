"""Retrieval on RealTime QA dev when questions are dated, and redundancy of the top passages.

  python benchmarks/timeliness.py --home /tmp/rtqa-home-time [--limit N]

Every configuration runs in this one process over the same ingested home, retrieving as the
eval suite does (question + options, k=10, ``Desk.search`` path: as-of bound, the question's
own window, recency prior, story diversification):

* ``unscoped``: no as-of date (today's: the 2022 corpus is all "old", so the prior is flat);
  the number docs/benchmarks.md reported before issue 13;
* ``as-of, no prior``: as of the quiz date, recency weight 0;
* ``as-of + prior``: as of the quiz date with the fitted prior (the default);
* ``7-day window``: the hand-given hard window of the 7 days before the quiz (+ as-of);
* ``as of corpus end``: every question as of 2022-11-11, the corpus' last date (the 2025-26
  out-of-corpus questions then have recent articles, ranked up by the prior, to be tempted by).

Document hit@5 and MRR@10 are over the questions with a gold article; redundancy (share of
top-5 passages whose story already appears above them, and the share that are another
outlet's copy of a story above) over the in-corpus questions, diversified by article (before
story grouping) and by story (after). Abstention (recall on the 50 out-of-corpus questions,
precision of the answered ones) is the answer pipeline's relevance gate over the passages an
answer uses (``settings.k``), as benchmarks/calibrate.py measures it.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.answering import when
from assistant.desk import Desk
from assistant.index.retriever import diversify
from assistant.index.schema import compile_filters
from assistant.settings import load_settings
from assistant.types import Filters, Passage
from evals import realtimeqa
from evals.dataset import Case

CORPUS_END = date(2022, 11, 11)


def filters_for(case: Case, config: str) -> Filters:
    asked = date.fromisoformat(str(case.asked_on))
    if config == "unscoped":
        return Filters()
    if config == "as of corpus end":
        return Filters(as_of=CORPUS_END)
    if config == "7-day window":
        return Filters(
            since=asked - timedelta(days=7), until=asked + timedelta(days=1), as_of=asked
        )
    return Filters(as_of=asked)


def candidates(desk: Desk, case: Case, filters: Filters) -> list[Passage]:
    search, lexical = desk.search_engine, desk.index.current()
    scoped, _ = when.apply(case.question, filters, date.today(), lambda f: search.holds(f, lexical))
    query = " ".join([case.question, *(case.choices or [])])
    return search.candidates(query, compile_filters(scoped), lexical=lexical).passages


def redundancy(top: list[Passage]) -> tuple[int, int, int]:
    """(passages, repeating a story above, another article's copy of a story above)."""
    repeats = copies = 0
    for i, p in enumerate(top):
        above = top[:i]
        if any(q.story_id == p.story_id for q in above):
            repeats += 1
            if all(q.doc_id != p.doc_id for q in above if q.story_id == p.story_id):
                copies += 1
    return len(top), repeats, copies


def run(home: Path, cases: list[Case], config: str, weight: float | None) -> dict[str, float]:
    desk = Desk(load_settings(home=home, recency_weight=weight))
    k, cap, settings = 10, desk.settings.per_article_cap, desk.settings
    hits, rr, red_doc, red_story, seconds = [], [], np.zeros(3), np.zeros(3), []
    answered: list[bool] = []
    for case in cases:
        t = time.perf_counter()
        pool = candidates(desk, case, filters_for(case, config))
        seconds.append(time.perf_counter() - t)
        used = diversify(pool, settings.k, cap)
        relevance = desk.search_engine.relevance(case.question, used, desk.index.current())
        answered.append(relevance.enough(settings.abstain_min_score, settings.abstain_dense_weight))
        if case.must_abstain:
            continue
        by_story = diversify(pool, k, cap)
        by_doc = diversify([p.model_copy(update={"story_id": p.doc_id}) for p in pool], k, cap)
        story_of = {p.chunk_id: p.story_id for p in pool}
        by_doc = [p.model_copy(update={"story_id": story_of[p.chunk_id]}) for p in by_doc]
        red_doc += redundancy(by_doc[:5])
        red_story += redundancy(by_story[:5])
        if case.gold_doc_ids:
            docs, gold = [p.doc_id for p in by_story], set(case.gold_doc_ids)
            hits.append(any(d in gold for d in docs[:5]))
            rank = next((i for i, d in enumerate(docs, start=1) if d in gold), None)
            rr.append(1 / rank if rank else 0.0)
    desk.close()
    outside = [a for a, c in zip(answered, cases, strict=True) if c.must_abstain]
    kept = [not c.must_abstain for a, c in zip(answered, cases, strict=True) if a]
    inside = [a for a, c in zip(answered, cases, strict=True) if not c.must_abstain]
    return {
        "abstain_recall": 1 - float(np.mean(outside)),
        "answered_precision": float(np.mean(kept)),
        "answer_rate": float(np.mean(inside)),
        "hit_at_5": float(np.mean(hits)),
        "mrr_at_10": float(np.mean(rr)),
        "redundant_before": red_doc[1] / red_doc[0],
        "copies_before": red_doc[2] / red_doc[0],
        "redundant_after": red_story[1] / red_story[0],
        "copies_after": red_story[2] / red_story[0],
        "p50_ms": float(np.median(seconds) * 1e3),
        "gold": len(hits),
        "cases": len(cases),
    }


def _ratio(r: dict[str, float], base: dict[str, float], key: str) -> str:
    return f"{r[key] / base[key]:.2f}x" if base[key] else "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True, help="an ingested dev corpus")
    parser.add_argument("--limit", type=int, help="the first N questions only")
    args = parser.parse_args()
    cases = realtimeqa.all_cases(realtimeqa.data_dir())
    cases = realtimeqa.load_cases(realtimeqa.data_dir(), limit=args.limit) if args.limit else cases
    configs = [
        ("unscoped", None),
        ("as-of, no prior", 0.0),
        ("as-of + prior", None),
        ("7-day window", None),
        ("as of corpus end", None),
    ]
    results = {name: run(args.home, cases, name, weight) for name, weight in configs}
    base = results["unscoped"]
    print("| configuration | doc hit@5 | MRR@10 | top-5 repeating a story (by article -> by story) "
          "| of which other outlets' copies | abstain recall | answered precision | answer rate "
          "| search p50 |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['hit_at_5']:.3f} ({_ratio(r, base, 'hit_at_5')}) "
            f"| {r['mrr_at_10']:.3f} ({_ratio(r, base, 'mrr_at_10')}) "
            f"| {r['redundant_before']:.3f} -> {r['redundant_after']:.3f} "
            f"| {r['copies_before']:.3f} -> {r['copies_after']:.3f} "
            f"| {r['abstain_recall']:.3f} | {r['answered_precision']:.3f} | {r['answer_rate']:.3f} "
            f"| {r['p50_ms']:.0f} ms |"
        )
    print(f"({base['gold']} questions with a gold article, {base['cases']} questions in all)")


if __name__ == "__main__":
    main()
