"""``newsdesk`` command line: a thin adapter over ``Desk`` and ``ingest_paths``.

Exit codes: 0 success, 1 usage or configuration error, 2 ingest finished but skipped inputs
(or ``ask --file`` had lines that failed).
Only this module configures logging and output.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from assistant.errors import NewsdeskError
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


def _date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2022-03-07", param_hint=flag
        ) from None


def _filters(
    since: str | None, until: str | None, source: str | None, as_of: str | None = None
) -> Filters:
    return Filters(
        since=_date(since, "--since"),
        until=_date(until, "--until"),
        source=source,
        as_of=_date(as_of, "--as-of"),
    )


def _settings(collection: str | None = None, **extra: Any) -> Settings:
    return load_settings(collection=collection, **extra)


def _desk(settings: Settings, surface: str) -> Any:
    """The local desk, or the service's when a server URL is set (``--server``)."""
    if settings.server_url:
        from assistant.remote import RemoteDesk

        return RemoteDesk(settings, surface=surface)
    from assistant.desk import Desk

    return Desk(settings)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _reading_console() -> Console:
    """Answers for a reader: word-wrapped on a terminal; unwrapped into a pipe or a file."""
    return Console() if out.is_terminal else out


def _not_blank(value: str | None, what: str, hint: str) -> None:
    if value is not None and not value.strip():
        raise typer.BadParameter(f"the {what} is empty", param_hint=hint)


def _answer_log(settings: Settings) -> Any:
    """The answer log, or ``None`` when it is off or cannot be opened (said on stderr)."""
    from assistant.answerlog import AnswerLog, LogError

    try:
        return AnswerLog.open(settings)
    except LogError as exc:
        err.print(f"[yellow]warning:[/yellow] {escape(str(exc))}; answers are not logged")
        return None


def _record(answer_log: Any, answer: Answer, filters: Filters) -> None:
    from assistant.answerlog import LogError

    if answer_log is None:
        return
    try:
        answer_log.record(answer, surface="ask", filters=filters)
    except LogError as exc:
        err.print(f"[yellow]warning:[/yellow] answer not logged: {escape(str(exc))}")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"newsdesk {version('newsdesk')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        int,
        typer.Option(
            "-v", "--verbose", count=True, help="More logging: -v for info, -vv for debug."
        ),
    ] = 0,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("httpx", "chromadb", "bm25s", "trafilatura", "openai", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or globs.")],
    prune: Annotated[bool, typer.Option(help="Remove documents whose files are gone.")] = False,
    reembed: Annotated[
        bool, typer.Option(help="Re-embed the collection with the configured embedder.")
    ] = False,
    collection: Collection = None,
    as_json: Json = False,
) -> None:
    """Ingest news articles (.txt .md .html .pdf .jsonl) into the collection."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ingest.pipeline import ingest_paths

    settings = _settings(collection)
    columns = (
        SpinnerColumn(),
        TextColumn("embedding"),
        BarColumn(),
        TextColumn("{task.completed} chunks · {task.fields[rate]:.1f} chunks/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("embed", total=None, rate=0.0)

        def progress(done: int) -> None:
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, rate=done / elapsed)

        def waiting(message: str) -> None:
            err.print(f"[yellow]{escape(message)}[/yellow]", highlight=False)

        report = ingest_paths(
            paths,
            settings,
            prune=prune,
            reembed_all=reembed,
            progress=progress,
            on_wait=waiting,
        )
    if as_json:
        _print_json(report.as_dict())
    else:
        for item in report.skipped:
            err.print(f"[yellow]skipped[/yellow] {item}", highlight=False, soft_wrap=True)
        out.print(
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.removed} removed · {report.chunks} chunks in {report.seconds:.1f}s "
            f"({report.chunks_per_s:.1f} chunks/s) · {len(report.skipped)} skipped",
            highlight=False,
        )
    raise typer.Exit(report.exit_code)


def _question_record(line: str, where: str, default_id: str) -> dict[str, Any]:
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


def _questions(path: Path) -> list[dict[str, Any]]:
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
            items.append(_question_record(line, f"{path}:{lineno}", f"line-{lineno}"))
        else:
            items.append({"id": f"line-{lineno}", "question": line.strip()})
    return items


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Questions: text (one a line) or JSONL.")
    ] = None,
    k: K = None,
    since: Since = None,
    until: Until = None,
    source: Source = None,
    collection: Collection = None,
    extractive: Annotated[bool, typer.Option(help="Never call a language model.")] = False,
    as_json: Json = False,
    as_of: AsOf = None,
    server: Server = None,
    timeline: Annotated[
        bool | None,
        typer.Option(
            "--timeline/--no-timeline",
            help="Order the evidence by date (default: when the question asks how something "
            "developed).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Answer a question with numbered citations to passages of your articles."""
    from assistant.surfaces.render import AnswerView, render_answer

    if (question is None) == (file is None):
        raise typer.BadParameter(
            "give either a QUESTION or --file, not both or neither", param_hint="QUESTION"
        )
    _not_blank(question, "question", "QUESTION")
    filters = _filters(since, until, source, as_of)
    settings = _settings(collection, extractive=extractive or None, server_url=server)
    desk = _desk(settings, "ask")
    answer_log = None if settings.server_url else _answer_log(settings)  # the service logs
    if question is not None:
        if as_json:
            answer = desk.answer(question, filters=filters, k=k, timeline=timeline)
            _print_json(answer.as_json())
        else:  # the text streams as the model writes it, then the checked answer
            events = desk.stream(question, filters=filters, k=k, timeline=timeline)
            answer = AnswerView(_reading_console()).show(events, question)
        _record(answer_log, answer, filters)
        return
    assert file is not None
    failed = 0
    for item in _questions(file):
        if "error" in item:
            failed += 1
            _print_json(item)
            err.print(f"[yellow]skipped[/yellow] {item['error']}", highlight=False)
            continue
        choices = item.get("choices")
        try:
            answer = desk.answer(
                str(item["question"]), filters=filters, k=k, choices=choices,
                timeline=timeline, as_of=item.get("as_of"),
            )  # fmt: skip
        except NewsdeskError as exc:
            failed += 1
            _print_json({"id": item["id"], "question": item["question"], "error": str(exc)})
            continue
        except Exception as exc:  # one question's failure never aborts the batch
            failed += 1
            logging.getLogger(__name__).debug("question %s failed", item["id"], exc_info=True)
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            _print_json({"id": item["id"], "question": item["question"], "error": reason})
            continue
        _record(answer_log, answer, filters)
        if as_json:
            _print_json({"id": item["id"], **answer.as_json()})
        else:
            out.rule(f"{item['id']}: {item['question']}")
            render_answer(out, answer)
    if failed:
        raise typer.Exit(2)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: K = None,
    since: Since = None,
    until: Until = None,
    source: Source = None,
    collection: Collection = None,
    as_json: Json = False,
    as_of: AsOf = None,
    server: Server = None,
) -> None:
    """Show the passages retrieval finds for a query (no answer)."""
    from assistant.surfaces.render import render_passages

    _not_blank(query, "query", "QUERY")
    passages = _desk(_settings(collection, server_url=server), "search").search(
        query, filters=_filters(since, until, source, as_of), k=k
    )
    if as_json:
        _print_json({"query": query, "results": [p.as_json() for p in passages]})
    else:
        render_passages(out, passages)


@app.command()
def stats(collection: Collection = None, as_json: Json = False, server: Server = None) -> None:
    """What is stored: documents, chunks, embedder and where the data lives."""
    data = _desk(_settings(collection, server_url=server), "stats").stats().model_dump()
    if as_json:
        _print_json(data)
    else:
        for key, value in data.items():
            out.print(
                f"[bold]{key:>10}[/bold]  {value if value is not None else '-'}", highlight=False
            )


@app.command()
def sources(collection: Collection = None, as_json: Json = False, server: Server = None) -> None:
    """Outlets in the collection, with article counts and date ranges."""
    found = _desk(_settings(collection, server_url=server), "sources").sources()
    if as_json:
        _print_json({"sources": [s.model_dump() for s in found]})
        return
    for s in found:
        span = " – ".join(x for x in (s.first_published, s.last_published) if x) or "undated"
        name = s.source or "(no source)"
        noun = "article" if s.articles == 1 else "articles"
        out.print(f"{name}  [dim]{s.articles} {noun} · {span}[/dim]", highlight=False)


@app.command()
def chat(
    k: K = None,
    since: Since = None,
    until: Until = None,
    source: Source = None,
    collection: Collection = None,
    extractive: Annotated[bool, typer.Option(help="Never call a language model.")] = False,
    latest: Annotated[
        bool, typer.Option("--continue", help="Go on with the latest chat conversation.")
    ] = False,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Go on with this logged conversation.")
    ] = None,
    server: Server = None,
) -> None:
    """Chat about your articles: follow-up questions, streamed cited answers, /help."""
    from assistant.surfaces.chat import run_chat

    if latest and conversation:
        raise typer.BadParameter(
            "give --continue or --conversation ID, not both", param_hint="--continue"
        )
    settings = _settings(collection, extractive=extractive or None, server_url=server)
    code = run_chat(
        settings, filters=_filters(since, until, source), k=k, extractive=extractive,
        latest=latest, conversation_id=conversation, console=_reading_console(),
    )  # fmt: skip
    raise typer.Exit(code)


@app.command()
def slack(
    host: Annotated[str, typer.Option(help="HTTP mode: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP mode: port to listen on.")] = 3000,
    collection: Collection = None,
    extractive: Annotated[bool, typer.Option(help="Never call a language model.")] = False,
    render_blocks: Annotated[
        str | None,
        typer.Option("--render-blocks", help="Print the Block Kit JSON for QUESTION and exit."),
    ] = None,
) -> None:
    """Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP at /slack/events."""
    settings = _settings(collection, extractive=extractive or None)
    try:
        from assistant.surfaces.slack import blocks
    except ImportError:
        raise NewsdeskError(
            "the Slack bot needs slack_bolt: pip install 'newsdesk[slack]'"
        ) from None
    if render_blocks is not None:
        from assistant.desk import Desk

        _not_blank(render_blocks, "question", "--render-blocks")
        with Desk(settings) as desk:
            answer = desk.answer(render_blocks)
        text = blocks.fallback_text(answer)
        sys.stdout.write(blocks.to_json(blocks.answer_blocks(answer, answer_id=0), text) + "\n")
        return
    from assistant.surfaces.slack.server import serve

    serve(settings, host, port, say=lambda line: err.print(line, highlight=False))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads its own desk).")
    ] = 1,
    collection: Collection = None,
    extractive: Annotated[bool, typer.Option(help="Never call a language model.")] = False,
) -> None:
    """The team service: HTTP API and OpenAI-compatible chat completions over one desk."""
    settings = _settings(collection, extractive=extractive or None)
    try:
        from assistant.surfaces.service.server import check_bind
        from assistant.surfaces.service.server import serve as run
    except ImportError:
        raise NewsdeskError(
            "the service needs fastapi and uvicorn: pip install 'newsdesk[serve]'"
        ) from None
    check_bind(settings, host)
    run(settings, host, port, workers=workers, say=lambda line: err.print(line, highlight=False))


def _add_eval_commands() -> None:
    from assistant.surfaces.logs import app as log_app
    from evals.cli import app as eval_app

    app.add_typer(eval_app, name="eval")
    app.add_typer(log_app, name="log")


_add_eval_commands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: every user-caused error is one friendly line and exit code 1."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="newsdesk", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 1
    except typer.TyperException as exc:  # click's usage errors, as vendored by typer
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `newsdesk`: help was printed
            return 0  # (typer's own test, without importing its vendored click)
        err.print(f"[red]error:[/red] {exc.format_message()}", highlight=False)  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            err.print(f"[dim]{ctx.get_usage()}[/dim]", highlight=False)
        return 1
    except NewsdeskError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except OSError as exc:  # disk full, read-only or missing folders of the data home
        where = f" ({exc.filename})" if exc.filename else ""
        err.print(f"[red]error:[/red] {escape(exc.strerror or str(exc))}{escape(where)}",
                  highlight=False)  # fmt: skip
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
