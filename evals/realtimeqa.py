"""RealTime QA (dev split) as an eval suite, read in place from ``../shared/benchmarks``.

The benchmark's files are research-use news texts: this module reads them where they lie and
writes the articles to ingest only under an eval run's work folder (:func:`write_corpus`),
never into the repository.

Data notes (see the benchmark's README):

* Each question's quiz week is the ``YYYYMMDD`` prefix of its ``qid``; that is exactly the
  corpus ``week`` value. The question ``date`` is the quiz's own date, which for half the
  quizzes is a day earlier (``2022/06/16`` belongs to week ``20220617``), and for the
  out-of-corpus questions is written either ``YYYY/MM/DD`` or ``YYYY-MM-DD``.
* Out-of-corpus questions (2025-2026) become ``must_abstain`` cases. Their quiz answer is
  dropped (a must-abstain case has no acceptable answer); the choices are kept.
* Some options are empty strings (two questions have a fifth, empty choice); they are dropped.
* ``evidence`` (the quiz's explanation) is never read into a case.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evals.dataset import Case, EvalDataError, check_case

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "realtimeqa"
ENV_DIR = "NEWSDESK_REALTIMEQA_DIR"
CORPUS = "corpus.jsonl.gz"
QUESTIONS = "questions.dev.jsonl"
BASELINES = "baselines.dev.tsv"
MIN_OUT_OF_CORPUS = 5
_WEEK = re.compile(r"^(\d{8})_")


class BenchmarkMissing(EvalDataError):
    """The benchmark files are not there; suites that need them are skipped."""


def data_dir(suite_settings_dir: str | None = None) -> Path:
    """Where the benchmark lies: ``$NEWSDESK_REALTIMEQA_DIR``, else the suite's ``dir``, else
    :data:`DEFAULT_DIR`. Raises :class:`BenchmarkMissing` when its files are absent."""
    env = os.environ.get(ENV_DIR)
    where = Path(env or suite_settings_dir or DEFAULT_DIR).expanduser()
    missing = [name for name in (CORPUS, QUESTIONS) if not (where / name).is_file()]
    if missing:
        source = f"${ENV_DIR}" if env else "suite setting" if suite_settings_dir else "default"
        raise BenchmarkMissing(
            f"RealTime QA benchmark not found: looked in {where} ({source}), missing "
            f"{', '.join(missing)}; the realtimeqa suite is skipped. Set ${ENV_DIR} to the "
            "folder that holds it."
        )
    return where


def _qid_key(qid: str) -> tuple[str, int, str]:
    """Natural order: ``20220617_2`` before ``20220617_10``."""
    head, _, tail = qid.partition("_")
    return (head, int(tail), "") if tail.isdigit() else (head, -1, tail)


def _key(case: Case) -> tuple[str, int, str]:
    return _qid_key(case.id)


def question_week(qid: str, date: str) -> str:
    """The corpus week (``YYYYMMDD``) of a question: its qid prefix, else its date's digits."""
    match = _WEEK.match(qid)
    return match.group(1) if match else re.sub(r"\D", "", date)[:8]


def case_week(case: Case) -> str | None:
    return next((t.removeprefix("week:") for t in case.tags if t.startswith("week:")), None)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for lineno, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise EvalDataError(f"{path}:{lineno}: malformed JSON ({exc})") from None
                if not isinstance(record, dict):
                    raise EvalDataError(f"{path}:{lineno}: line is not a JSON object")
                yield lineno, record
    except (OSError, EOFError) as exc:
        raise EvalDataError(f"{path}: cannot read ({exc})") from None


def _case(record: dict[str, Any], where: str) -> Case:
    types = {"qid": str, "date": str, "question": str, "choices": list, "answers": list}
    types |= {"gold_doc_ids": list, "in_corpus": bool}
    for name, kind in types.items():
        if not isinstance(record.get(name), kind):
            raise EvalDataError(f"{where}: field {name!r} must be a {kind.__name__}")
    qid, in_corpus = record["qid"], record["in_corpus"]
    gold = [str(g) for g in record["gold_doc_ids"]]
    tags = ["in_corpus" if in_corpus else "out_of_corpus"]
    tags.append(f"week:{question_week(qid, record['date'])}")
    if gold:
        tags.append("has_gold")
    case = Case(
        id=qid,
        question=record["question"].strip(),
        answers=[str(a) for a in record["answers"]] if in_corpus else [],
        choices=[str(c) for c in record["choices"] if str(c).strip()] or None,
        gold_doc_ids=gold,
        must_abstain=not in_corpus,
        tags=tags,
        asked_on=record["date"].replace("/", "-"),
    )
    problems = check_case(case)
    if problems:
        raise EvalDataError(f"{where}: {problems[0]}")
    return case


def all_cases(dir: Path) -> list[Case]:
    """Every question of the dev split, in qid order."""
    path = dir / QUESTIONS
    cases = [_case(record, f"{path}:{lineno}") for lineno, record in _records(path)]
    return sorted(cases, key=lambda c: _qid_key(c.id))


def _spread(cases: Iterable[Case]) -> list[Case]:
    """A fixed pseudo-random order (by hash of the id), so samples span all quiz dates."""
    return sorted(cases, key=lambda c: hashlib.sha256(c.id.encode()).hexdigest())


def load_cases(dir: Path, weeks: int | None = None, limit: int | None = None) -> list[Case]:
    """The dev questions as cases, sorted by qid; optionally a deterministic subset.

    ``weeks=N``: the in-corpus questions of the N most recent quiz weeks that have questions,
    plus out-of-corpus ones in proportion (at least 5), sampled by hash of the qid.
    ``limit=N``: then the first N by qid, in-corpus and out-of-corpus in the same ratio.
    """
    cases = all_cases(dir)
    inside = [c for c in cases if not c.must_abstain]
    outside = [c for c in cases if c.must_abstain]
    for name, value in (("weeks", weeks), ("limit", limit)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise EvalDataError(f"realtimeqa: {name} must be at least 1, got {value!r}")
    if weeks is not None and inside:
        recent = sorted({case_week(c) for c in inside}, key=str, reverse=True)[:weeks]
        picked = [c for c in inside if case_week(c) in recent]
        share = round(len(outside) * len(picked) / len(inside))
        outside = sorted(_spread(outside)[: max(MIN_OUT_OF_CORPUS, share)], key=_key)
        inside = picked
    if limit is not None and limit < len(inside) + len(outside):
        n_out = round(limit * len(outside) / (len(inside) + len(outside)))
        if outside and inside and limit >= 2:
            n_out = min(max(n_out, 1), limit - 1)
        n_in = min(limit - n_out, len(inside))
        inside, outside = inside[:n_in], outside[: limit - n_in]
    return sorted(inside + outside, key=_key)


def weeks_for(cases: Iterable[Case]) -> set[str]:
    """The corpus weeks that cover the in-corpus cases (out-of-corpus ones need none)."""
    return {w for c in cases if not c.must_abstain and (w := case_week(c)) is not None}


def _article(record: dict[str, Any], where: str) -> dict[str, str]:
    doc_id, text = record.get("doc_id"), record.get("text")
    if not isinstance(doc_id, str) or not doc_id or not isinstance(text, str):
        raise EvalDataError(f"{where}: field 'doc_id' or 'text' is missing")
    date = str(record.get("publish_date") or "")
    return {
        "id": doc_id,
        "title": str(record.get("title") or ""),
        "url": str(record.get("url") or ""),
        "published_at": date.replace("/", "-"),
        "text": text,
    }


def write_corpus(
    dir: Path, dest: Path, weeks: set[str] | None = None, cases: Sequence[Case] = ()
) -> Path:
    """Write the articles to ingest to ``dest/realtimeqa-<label>.jsonl.gz`` and return the path.

    All articles when ``weeks`` is None, else those of the given corpus weeks. The gold articles
    of ``cases`` (default: every question of those weeks) are always included, and their
    absence from the corpus is an error. ``dest`` is the run's work folder, never the repo.
    """
    if cases:
        required = {g for c in cases for g in c.gold_doc_ids}
    elif weeks is not None:
        required = {g for c in all_cases(dir) if case_week(c) in weeks for g in c.gold_doc_ids}
    else:
        required = set()
    label = "all" if weeks is None else hashlib.sha1(",".join(sorted(weeks)).encode()).hexdigest()
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"realtimeqa-{label[:12]}.jsonl.gz"
    part = out.with_name(f"{out.name}.{os.getpid()}.part")  # concurrent runs each write their own
    source, found = dir / CORPUS, set()
    with part.open("wb") as raw, gzip.GzipFile("", "wb", 5, raw, mtime=0) as gz:
        for lineno, record in _records(source):
            doc_id = record.get("doc_id")
            if weeks is None or record.get("week") in weeks or doc_id in required:
                article = _article(record, f"{source}:{lineno}")
                gz.write(json.dumps(article, ensure_ascii=False).encode() + b"\n")
                found.add(article["id"])
    missing = sorted(required - found)
    if missing:
        part.unlink()
        raise EvalDataError(f"{source}: gold articles not in the corpus: {', '.join(missing)}")
    part.replace(out)
    return out


def baselines(dir: Path) -> dict[str, dict[str, float]]:
    """``config -> {"n": 319, "MC-acc": 0.705}`` (or ``EM``/``F1``) from baselines.dev.tsv."""
    path = dir / BASELINES
    if not path.is_file():
        raise BenchmarkMissing(f"{path}: RealTime QA baselines file not found")
    out: dict[str, dict[str, float]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        cells = line.split("\t")
        if not line.strip() or cells[0] == "config":
            continue
        try:
            config, n, metrics = cells
            scores = {"n": float(n)}
            for pair in metrics.split():
                name, _, value = pair.partition("=")
                scores[name] = float(value)
        except ValueError:
            raise EvalDataError(
                f"{path}:{lineno}: expected 'config<TAB>n<TAB>NAME=VALUE ...'"
            ) from None
        out[config] = scores
    return out
