"""Run a suite: ingest its corpus, answer every case through the core, score, write.

Outputs in ``--out``: ``results.jsonl`` (one line per case: retrieved ids, answer, citations,
scores, timings), ``summary.json`` (manifest + aggregates + gate), ``summary.md`` and a
self-contained ``report.html``. A case that fails is recorded with its error and scored as
errors; the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from assistant import prompts
from assistant.answering.numbering import to_passage_markers
from assistant.answering.verdicts import cache_root
from assistant.desk import Desk
from assistant.settings import Settings, load_settings
from assistant.types import Answer, Filters, Turn
from evals import metrics as m
from evals.dataset import Case, Suite
from evals.judge import OfflineJudge, make_judge

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
RETRIEVAL_KS = (1, 5, 10)


@dataclass
class RunOptions:
    out: Path
    home: Path | None = None  # reuse an ingested data home (the big corpus takes ~20 min)
    mode: str | None = None  # "extractive" | "llm" | None: the suite's mode
    weeks: int | None = None
    limit: int | None = None
    no_date_scope: bool = False
    progress: Progress | None = None
    date_scope: int | None = None  # a hard window of N days before each question's date
    as_of: date | None = None  # answer every case as of this date instead of its asked_on


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _package_version() -> str:
    try:
        return version("newsdesk")
    except PackageNotFoundError:
        return "unknown"


def _settings(suite: Suite, opts: RunOptions, home: Path) -> Settings:
    mode = opts.mode or suite.mode
    overrides: dict[str, Any] = {**suite.settings, "home": home}
    if mode == "extractive":
        overrides["extractive"] = True
    settings = load_settings(**overrides)
    if mode == "llm" and not settings.llm_configured:
        from assistant.errors import ConfigError

        raise ConfigError("--llm needs OPENAI_API_KEY or NEWSDESK_LLM_BASE_URL")
    return settings


def _corpus_paths(suite: Suite, cases: list[Case], opts: RunOptions) -> list[str]:
    if suite.kind != "realtimeqa":
        return [str(p) for p in suite.corpus]
    from evals import realtimeqa

    where = realtimeqa.data_dir(suite.options.get("dir"))
    selected = opts.weeks or opts.limit or suite.options.get("weeks") or suite.options.get("limit")
    weeks = realtimeqa.weeks_for(cases) if selected else None
    work = (opts.home or opts.out / "home").parent / "realtimeqa-work"
    return [str(realtimeqa.write_corpus(where, work, weeks, cases))]


def _retrieval_scores(case: Case, doc_ids: list[str], texts: list[str]) -> dict[str, m.Score]:
    gold = set(case.gold_doc_ids)
    scores = {f"hit_at_{k}": m.hit_at_k(doc_ids, gold, k) for k in RETRIEVAL_KS}
    scores["recall_at_10"] = m.recall_at_k(doc_ids, gold, 10)
    scores["mrr_at_10"] = m.mrr_at_k(doc_ids, gold, 10)
    scores["ndcg_at_10"] = m.ndcg_at_k(doc_ids, gold, 10)
    scores["answer_bearing_at_5"] = m.answer_bearing_at_k(texts, case.answers, 5)
    return scores


def _answer_scores(
    case: Case, answer: Answer, judge: m.Judge, offline: m.Judge | None = None
) -> dict[str, m.Score]:
    scores: dict[str, m.Score] = {}
    answerable = not case.must_abstain
    if answer.mode == "llm" and answerable and not answer.abstained:
        scores["exact_match"] = m.exact_match(answer.text, case.answers)
        scores["token_f1"] = m.token_f1(answer.text, case.answers)
    else:  # an extractive brief is sentences, not a short answer: EM/F1 do not apply
        scores["exact_match"] = scores["token_f1"] = m.Score.na()
    recall_na = not answerable or answer.abstained
    scores["answer_recall"] = (
        m.Score.na() if recall_na else m.answer_recall(answer.text, case.answers)
    )
    scores["answer_first"] = (
        m.Score.na() if recall_na else m.answer_first(answer.text, case.answers)
    )
    scores["choice_accuracy"] = (
        m.choice_accuracy(answer.choice, case.answers)
        if case.choices and answerable
        else m.Score.na()
    )
    texts = [p.text for p in answer.passages]
    # the passage-level metrics read markers as passage ranks ([n] = passages[n-1]); the
    # reader's markers are one number per article (README), so score the rank-marked text
    ranked = passage_marked(answer)
    cited = m.citation_scores(ranked, texts, judge)
    scores["citation_recall"] = cited.recall
    scores["citation_precision"] = cited.precision
    audit = m.audit_answer(ranked, len(texts), texts)
    if answer.abstained:
        for name in ("uncited_factual", "out_of_range", "numbers_missing"):
            scores[name] = m.Score.na()
    else:
        scores["uncited_factual"] = m.Score.of(audit.uncited_factual)
        scores["out_of_range"] = m.Score.of(audit.out_of_range)
        scores["numbers_missing"] = m.Score.of(audit.numbers_missing)
    if offline is not None:
        # raw_text: the model's reply before verification (None in extractive mode)
        shown = m.delivered_scores(ranked, raw_text_of(answer), texts, offline)
        scores["unsupported_delivered"] = shown.unsupported
        scores["unsupported_delivered_rate"] = shown.unsupported_rate
        scores["supported_kept"] = shown.supported_kept
    return scores


def passage_marked(answer: Answer) -> str:
    """The answer with citation markers as passage ranks."""
    return answer.ranked_text or to_passage_markers(answer.text, answer.citations)


def raw_text_of(answer: Answer) -> str | None:
    """The model's reply before verification, when the pipeline recorded one (LLM mode)."""
    raw = getattr(answer, "raw_text", None)
    return raw if isinstance(raw, str) and answer.mode == "llm" else None


def removed_of(answer: Answer) -> list[dict[str, Any]]:
    """The sentences verification removed (``verify.Removed``: text, reason), as JSON."""
    out = []
    for item in getattr(answer, "removed", None) or []:
        if isinstance(item, dict):
            out.append({"text": item.get("text"), "reason": item.get("reason")})
        else:
            out.append(
                {"text": getattr(item, "text", None), "reason": getattr(item, "reason", None)}
            )
    return out


def case_filters(case: Case, scope_days: int | None, as_of: date | None = None) -> Filters | None:
    """A dated question is answered as of the day it was asked (``as_of`` overrides that);
    with ``scope_days`` it also sees only the articles of the ``scope_days`` before it."""
    when = as_of or (date.fromisoformat(case.asked_on) if case.asked_on else None)
    if when is None:
        return None
    if not (scope_days and case.asked_on):
        return Filters(as_of=when)
    asked = date.fromisoformat(case.asked_on)
    return Filters(
        since=asked - timedelta(days=scope_days), until=asked + timedelta(days=1), as_of=when
    )


def _run_case(
    assistant: Desk,
    case: Case,
    k: int,
    judge: m.Judge,
    filters: Filters | None,
    offline: m.Judge | None = None,
) -> dict[str, Any]:
    history: list[Turn] = []
    for earlier in case.history:
        history.append(Turn(earlier, assistant.answer(earlier, history=history, filters=filters)))
    t = time.perf_counter()
    answer = assistant.answer(case.question, history=history, filters=filters, choices=case.choices)
    standalone = answer.standalone_question or case.question
    query = " ".join([standalone, *(case.choices or [])])  # what the answer retrieved with
    search_t = time.perf_counter()
    window = answer.timeframe if answer.timeframe and answer.timeframe.applied else None
    if window is not None:  # the window the answer read from the question, not the options
        f = filters or Filters()
        since = max(d for d in (f.since, window.since) if d is not None)
        until = min(d for d in (f.until, window.until) if d is not None)
        scoped = f.model_copy(update={"since": since, "until": until})
        ranked = assistant.search(query, filters=scoped, k=k, resolve_dates=False)
    else:
        ranked = assistant.search(query, filters=filters, k=k, resolve_dates=False)
    search_ms = (time.perf_counter() - search_t) * 1e3
    scores = _retrieval_scores(case, [p.doc_id for p in ranked], [p.text for p in ranked])
    scores.update(_answer_scores(case, answer, judge, offline))
    record = answer.as_json()
    return {
        "retrieved": [
            {"doc_id": p.doc_id, "chunk_id": p.chunk_id, "score": p.score} for p in ranked
        ],
        "answer": record["answer"],
        "mode": answer.mode,
        "abstained": answer.abstained,
        "choice": answer.choice,
        "standalone_question": standalone,
        "citations": record["citations"],
        "passages": [{**p, "text": p["text"][:600]} for p in record["passages"]],
        "scores": {name: s.as_json() for name, s in scores.items()},
        "timings": {
            **answer.timings,
            "search_ms": search_ms,
            "case_ms": (time.perf_counter() - t) * 1e3,
        },
        "usage": record["usage"],
        "raw_text": raw_text_of(answer),
        "removed": removed_of(answer),
    }


def judge_cache_dir() -> Path:
    """Shared by every run, so re-running an eval asks the LLM judge nothing new."""
    return cache_root() / "judge"


def corpus_fingerprint(assistant: Desk) -> str:
    states = assistant.store.doc_states()
    payload = "\n".join(f"{d}:{s.content_hash}" for d, s in sorted(states.items()))
    return hashlib.sha256(payload.encode()).hexdigest()[:16] + f":{len(states)}docs"


def run_suite(suite: Suite, opts: RunOptions) -> dict[str, Any]:
    """Run every case, write the outputs, return the summary (``summary.json``)."""
    from evals.report import summarise, write_reports
    from ingest.pipeline import ingest_paths

    started = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    home = opts.home or opts.out / "home"
    cases = suite.load_cases()
    if suite.kind == "realtimeqa" and (opts.weeks or opts.limit):
        from evals import realtimeqa

        where = realtimeqa.data_dir(suite.options.get("dir"))
        cases = realtimeqa.load_cases(where, opts.weeks, opts.limit)
    elif opts.limit:
        cases = cases[: opts.limit]
    settings = _settings(suite, opts, home)
    report = ingest_paths(_corpus_paths(suite, cases, opts), settings)
    if report.skipped:
        log.warning("%d corpus inputs skipped while ingesting", len(report.skipped))
    assistant = Desk(settings)
    judge = make_judge(settings, assistant.checker, judge_cache_dir())  # never the model tested
    offline = OfflineJudge(assistant.checker)  # unsupported_delivered, supported_kept
    records: list[dict[str, Any]] = []
    with (opts.out / "results.jsonl").open("w", encoding="utf-8") as fh:
        for i, case in enumerate(cases, start=1):
            base = {"id": case.id, "question": case.question, "tags": case.tags,
                    "must_abstain": case.must_abstain, "answers": case.answers,
                    "choices": case.choices, "gold_doc_ids": case.gold_doc_ids,
                    "judge": judge.tier}  # fmt: skip
            try:
                scope = opts.date_scope or suite.date_scope_days
                filters = case_filters(case, None if opts.no_date_scope else scope, opts.as_of)
                result = _run_case(assistant, case, suite.k, judge, filters, offline)
                record = {**base, **result, "error": None}
            except Exception as exc:  # one bad case never aborts the run
                log.warning("case %s failed: %s", case.id, exc)
                record = {**base, "error": f"{type(exc).__name__}: {exc}", "scores": {}}
            records.append(record)
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            if opts.progress:
                opts.progress(i, len(cases))
    manifest = {
        "suite": suite.name,
        "suite_hash": suite.fingerprint()[:16],
        "dataset_hash": _dataset_hash(cases),
        "corpus": corpus_fingerprint(assistant),
        "collection": settings.collection,
        "embedder": assistant.store.embedder_id,
        "chunker": assistant.store.manifest().get("chunker"),
        "mode": "llm" if settings.use_llm else "extractive",
        "llm_model": settings.llm_model if settings.use_llm else None,
        "judge": judge.tier,
        "judge_model": judge.model,  # None: the offline proxy
        "verify_with_llm": settings.verify_with_llm and settings.use_llm,
        "prompts": {name: p.sha256 for name, p in prompts.load_all().items()},
        "settings": {k: str(v) for k, v in suite.settings.items()},
        "date_scope_days": None if opts.no_date_scope else opts.date_scope or suite.date_scope_days,
        "as_of": opts.as_of.isoformat() if opts.as_of else "asked_on",
        "package_version": _package_version(),
        "git_commit": _git_commit(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "cases": len(cases),
    }
    summary = summarise(suite, manifest, records)
    write_reports(opts.out, summary, records)
    return summary


def _dataset_hash(cases: list[Case]) -> str:
    payload = json.dumps([c.as_json() for c in cases], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def per_case_values(records: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """``{metric: {case_id: value}}`` for paired comparisons."""
    out: dict[str, dict[str, float | None]] = defaultdict(dict)
    for r in records:
        for name, score in (r.get("scores") or {}).items():
            out[name][r["id"]] = score.get("value")
        for stage in ("total_ms",):
            if r.get("timings", {}).get(stage) is not None:
                out[stage][r["id"]] = r["timings"][stage]
        if r.get("error") or "abstained" not in r:
            continue
        # the abstention metrics, case by case: each is defined on its own subset of cases
        abstained, must = bool(r["abstained"]), bool(r.get("must_abstain"))
        out["abstain_recall"][r["id"]] = float(abstained) if must else None
        out["answered_precision"][r["id"]] = float(not must) if not abstained else None
        out["answer_rate"][r["id"]] = float(not abstained) if not must else None
    return dict(out)
