"""From feedback to cases: turn a logged answer (``newsdesk ask --json`` output) into a case."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from evals.dataset import Case, EvalDataError, case_from_json, load_cases

Verdict = Literal["good", "wrong", "should-abstain"]


def read_logged_answer(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8").strip()
        try:
            record = json.loads(text)  # one (possibly pretty-printed) object
        except json.JSONDecodeError:
            record = json.loads(text.splitlines()[-1])  # a JSONL log: its newest line
    except (OSError, json.JSONDecodeError, IndexError) as exc:
        raise EvalDataError(f"{path}: not a logged answer ({exc})") from None
    if not isinstance(record, dict) or not record.get("question"):
        raise EvalDataError(f"{path}: field 'question' is missing")
    return record


def read_log_entry(answer_id: int) -> tuple[dict[str, Any], str | None, list[str]]:
    """An answer from the answer log (``newsdesk log``) as its ``ask --json`` object, the
    newest feedback verdict given to it (``good``/``bad``, ``None`` without feedback) and the
    questions asked before it in its conversation (a follow-up needs them)."""
    from assistant.answerlog import AnswerLog
    from assistant.settings import load_settings

    settings = load_settings()
    if not settings.log_path.exists():
        raise EvalDataError(f"no answer log at {settings.log_path}")
    with AnswerLog(settings.log_path, settings=settings) as answer_log:
        entry = answer_log.get(answer_id)
        if entry is None:
            raise EvalDataError(f"no answer {answer_id} in the answer log {settings.log_path}")
        earlier = []
        if entry.conversation_id:
            turns = answer_log.list(10_000, conversation_id=entry.conversation_id)
            earlier = [e.question for e in reversed(turns) if e.id < entry.id]
    return entry.answer, entry.verdict.verdict if entry.verdict else None, earlier


def case_from_answer(
    record: dict[str, Any],
    verdict: Verdict,
    right_passages: Sequence[str] = (),
    answers: Sequence[str] = (),
    case_id: str | None = None,
    history: Sequence[str] = (),
) -> Case:
    """``good``: the cited (or named) passages' articles become gold. ``wrong``: only the
    passages named with ``right_passages`` are gold. ``should-abstain``: a must-abstain case."""
    question = str(record["question"])
    passages = {p["chunk_id"]: p for p in record.get("passages", [])}
    unknown = [c for c in right_passages if c not in passages]
    if unknown:
        raise EvalDataError(f"passage(s) {unknown} are not among the answer's passages")
    if verdict == "should-abstain":
        gold: list[str] = []
    elif right_passages:
        gold = list(dict.fromkeys(passages[c]["doc_id"] for c in right_passages))
    elif verdict == "good":
        gold = list(dict.fromkeys(c["doc_id"] for c in record.get("citations", [])))
    else:
        raise EvalDataError("a 'wrong' verdict needs --passage CHUNK_ID for the right passages")
    slug = re.sub(r"[^a-z0-9]+", "-", question.lower()).strip("-")[:40]
    digest = hashlib.sha1(question.encode()).hexdigest()[:6]
    data = {
        "id": case_id or f"feedback-{slug}-{digest}",
        "question": question,
        "answers": [] if verdict == "should-abstain" else list(answers),
        "gold_doc_ids": gold,
        "must_abstain": verdict == "should-abstain",
        "tags": ["feedback", verdict],
    }
    if history:
        data["history"] = list(history)
    case, problems = case_from_json(data)
    if case is None or problems:
        raise EvalDataError("; ".join(problems) or "invalid case")
    return case


def append_case(cases_path: Path, case: Case) -> None:
    """Append to a cases file, refusing a duplicate id; the file stays valid JSONL."""
    if cases_path.exists() and case.id in {c.id for c in load_cases(cases_path)}:
        raise EvalDataError(f"{cases_path}: a case with id {case.id!r} already exists")
    with cases_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(case.as_json(), ensure_ascii=False) + "\n")
