"""``newsdesk log``: the answer log, listed and shown (a thin adapter over ``AnswerLog``)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from assistant.answerlog import AnswerLog, LogEntry, LogError
from assistant.settings import load_settings
from assistant.surfaces.render import plural, render_answer

app = typer.Typer(
    help="The answer log: every answer of ask and chat, with its sources and feedback.",
    invoke_without_command=True,
)
out = Console(soft_wrap=True)
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _open() -> AnswerLog:
    settings = load_settings()
    if not settings.log:
        raise LogError("the answer log is off (NEWSDESK_LOG=false)")
    if not settings.log_path.exists():
        raise LogError(f"no answer log yet at {settings.log_path}: ask something first")
    return AnswerLog(settings.log_path, settings=settings)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _verdict(entry: LogEntry) -> str:
    v = entry.verdict
    if v is None:
        return ""
    colour = "green" if v.verdict == "good" else "red"
    note = f": {escape(v.note)}" if v.note else ""
    return f" [{colour}]{v.verdict}{note}[/{colour}]"


@app.callback()
def list_entries(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("-n", min=1, help="How many entries (newest first).")] = 20,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Only this conversation's answers.")
    ] = None,
    as_json: Json = False,
) -> None:
    """List logged answers, newest first; `newsdesk log show ID` shows one."""
    if ctx.invoked_subcommand is not None:
        return
    with _open() as answer_log:
        entries = answer_log.list(n, conversation_id=conversation)
    if as_json:
        _print_json({"entries": [e.model_dump() for e in entries]})
        return
    if not entries:
        out.print("[dim]no logged answers[/dim]")
    for e in entries:
        conv = f" · {e.conversation_id[:8]}" if e.conversation_id else ""
        state = " · abstained" if e.abstained else ""
        out.print(
            f"[bold]#{e.id}[/bold] [dim]{e.created_at[:19].replace('T', ' ')} · {e.surface} · "
            f"{e.mode}{conv}{state}[/dim]{_verdict(e)}  {escape(' '.join(e.question.split()))}",
            highlight=False,
        )


@app.command("show")
def show(
    entry_id: Annotated[int, typer.Argument(metavar="ID", help="The entry's number.")],
    as_json: Json = False,
) -> None:
    """One logged answer with its sources, what was retrieved and its feedback."""
    with _open() as answer_log:
        entry = answer_log.get(entry_id)
    if entry is None:
        raise LogError(f"no answer {entry_id} in the answer log")
    if as_json:
        _print_json(entry.model_dump())
        return
    model = f" · {entry.model}" if entry.model else ""
    conv = f" · conversation {entry.conversation_id}" if entry.conversation_id else ""
    out.print(
        f"[bold]#{entry.id}[/bold] [dim]{entry.created_at[:19].replace('T', ' ')} · "
        f"{entry.surface} · {entry.mode}{model}{conv}[/dim]",
        highlight=False,
    )
    scope = ", ".join(f"{k} {v}" for k, v in entry.filters.items())
    if scope:
        out.print(f"[dim]filters: {escape(scope)}[/dim]", highlight=False)
    out.print(f"[bold]Q:[/bold] {escape(entry.question)}", highlight=False)
    if entry.standalone_question and entry.standalone_question != entry.question:
        out.print(f"[dim]→ searched: {escape(entry.standalone_question)}[/dim]", highlight=False)
    render_answer(out, entry.to_answer())
    out.print(f"[dim]retrieved {plural(len(entry.retrieved), 'passage')}:[/dim]", highlight=False)
    for r in entry.retrieved:
        out.print(f"[dim]  {escape(r['chunk_id'])}  {r['score']:.4f}[/dim]", highlight=False)
    for f in entry.feedback:
        who = f" by {escape(f.who)}" if f.who else ""
        note = f": {escape(f.note)}" if f.note else ""
        out.print(f"feedback [bold]{f.verdict}[/bold]{who}{note} [dim]{f.created_at[:19]}[/dim]")
