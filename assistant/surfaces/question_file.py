"""``newsdesk ask --file``: questions from a text file (one a line) or JSONL records."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import typer


def question_record(line: str, where: str, default_id: str) -> dict[str, Any]:
    """One JSONL question, or ``{"id", "error"}`` naming the line and field."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"id": default_id, "error": f"{where}: bad JSON ({exc.msg})"}
    if not isinstance(record, dict) or not str(record.get("question", "")).strip():
        return {"id": default_id, "error": f"{where}: no 'question' field"}
    record["id"] = str(record.get("id", default_id))
    choices = record.get("choices")
    if choices is not None and not (
        isinstance(choices, list) and all(isinstance(c, str) for c in choices)
    ):
        return {"id": record["id"], "error": f"{where}: field 'choices' must be a list of strings"}
    as_of = record.get("as_of")
    if as_of is not None:
        try:
            record["as_of"] = date.fromisoformat(str(as_of))
        except ValueError:
            problem = f"field 'as_of' must be a date like 2022-03-07, got {as_of!r}"
            return {"id": record["id"], "error": f"{where}: {problem}"}
    return record


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Questions from a text file (one a line) or JSONL ({"id", "question", "choices"?})."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--file") from None
    items: list[dict[str, Any]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl" or line.lstrip().startswith("{"):
            items.append(question_record(line, f"{path}:{lineno}", f"line-{lineno}"))
        else:
            items.append({"id": f"line-{lineno}", "question": line.strip()})
    return items
