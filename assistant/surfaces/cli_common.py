"""What every ``newsdesk`` command shares: the Typer app, the consoles, option types, and the
small helpers that turn options into settings, filters and a desk (local or remote)."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from assistant.settings import Settings, load_settings
from assistant.types import Answer, Filters

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Ask questions about your news articles; answers cite the passages they rest on.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

K = Annotated[int | None, typer.Option("-k", "--k", min=1, max=50, help="Passages to use.")]
Since = Annotated[str | None, typer.Option(help="Only articles published on/after YYYY-MM-DD.")]
Until = Annotated[str | None, typer.Option(help="Only articles published on/before YYYY-MM-DD.")]
Source = Annotated[str | None, typer.Option(help="Only articles from this source/outlet.")]
Collection = Annotated[str | None, typer.Option(help="Chroma collection to use.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="URL",
        help="Use a `newsdesk serve` service (token: NEWSDESK_API_TOKEN) instead of the local "
        "store (default: NEWSDESK_SERVER_URL).",
    ),
]
AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Answer as of YYYY-MM-DD: nothing published later is used, and 'this week' "
        "is read against it (default: today).",
    ),
]


def parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2022-03-07", param_hint=flag
        ) from None


def make_filters(
    since: str | None, until: str | None, source: str | None, as_of: str | None = None
) -> Filters:
    return Filters(
        since=parse_date(since, "--since"),
        until=parse_date(until, "--until"),
        source=source,
        as_of=parse_date(as_of, "--as-of"),
    )


def settings_for(collection: str | None = None, **extra: Any) -> Settings:
    return load_settings(collection=collection, **extra)


def desk_for(settings: Settings, surface: str) -> Any:
    """The local desk, or the service's when a server URL is set (``--server``)."""
    if settings.server_url:
        from assistant.remote import RemoteDesk

        return RemoteDesk(settings, surface=surface)
    from assistant.desk import Desk

    return Desk(settings)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def reading_console() -> Console:
    """Answers for a reader: word-wrapped on a terminal; unwrapped into a pipe or a file."""
    return Console() if out.is_terminal else out


def not_blank(value: str | None, what: str, hint: str) -> None:
    if value is not None and not value.strip():
        raise typer.BadParameter(f"the {what} is empty", param_hint=hint)


def open_answer_log(settings: Settings) -> Any:
    """The answer log, or ``None`` when it is off or cannot be opened (said on stderr)."""
    from assistant.answerlog import AnswerLog, LogError

    try:
        return AnswerLog.open(settings)
    except LogError as exc:
        err.print(f"[yellow]warning:[/yellow] {escape(str(exc))}; answers are not logged")
        return None


def record_answer(answer_log: Any, answer: Answer, filters: Filters) -> None:
    from assistant.answerlog import LogError

    if answer_log is None:
        return
    try:
        answer_log.record(answer, surface="ask", filters=filters)
    except LogError as exc:
        err.print(f"[yellow]warning:[/yellow] answer not logged: {escape(str(exc))}")


def print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"newsdesk {version('newsdesk')}", highlight=False)
        raise typer.Exit()
