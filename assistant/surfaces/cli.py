"""``newsdesk`` command line: a thin adapter over ``Desk`` and ``ingest_paths``.

Exit codes: 0 success, 1 usage or configuration error, 2 ingest finished but skipped inputs
(or ``ask --file`` had lines that failed).
Only the cli modules (this one, cli_common, cli_services) configure logging and output.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from assistant.errors import NewsdeskError
from assistant.surfaces.cli_common import (
    AsOf,
    Collection,
    Json,
    K,
    Server,
    Since,
    Source,
    Until,
    app,
    desk_for,
    err,
    make_filters,
    not_blank,
    open_answer_log,
    out,
    print_json,
    print_version,
    reading_console,
    record_answer,
    settings_for,
)
from assistant.surfaces.question_file import read_questions


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
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("httpx", "chromadb", "bm25s", "trafilatura", "openai", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``systemctl stop``) stops an ingest as Ctrl-C does: between two
    Chroma calls, letting the write in flight finish. Killed inside a write, the embedded
    store can be left unreadable (a half-written HNSW file)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


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

    settings = settings_for(collection)
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

        try:
            with terminate_as_interrupt():
                report = ingest_paths(
                    paths,
                    settings,
                    prune=prune,
                    reembed_all=reembed,
                    progress=progress,
                    on_wait=waiting,
                )
        except KeyboardInterrupt:
            bar.stop()
            err.print("interrupted: what is stored is whole; the next ingest finishes the work")
            raise typer.Exit(130) from None
    if as_json:
        print_json(report.as_dict())
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
    not_blank(question, "question", "QUESTION")
    filters = make_filters(since, until, source, as_of)
    settings = settings_for(collection, extractive=extractive or None, server_url=server)
    desk = desk_for(settings, "ask")
    answer_log = None if settings.server_url else open_answer_log(settings)  # the service logs
    if question is not None:
        if as_json:
            answer = desk.answer(question, filters=filters, k=k, timeline=timeline)
            print_json(answer.as_json())
        else:  # the text streams as the model writes it, then the checked answer
            events = desk.stream(question, filters=filters, k=k, timeline=timeline)
            answer = AnswerView(reading_console()).show(events, question)
        record_answer(answer_log, answer, filters)
        return
    assert file is not None
    failed = 0
    for item in read_questions(file):
        if "error" in item:
            failed += 1
            print_json(item)
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
            print_json({"id": item["id"], "question": item["question"], "error": str(exc)})
            continue
        except Exception as exc:  # one question's failure never aborts the batch
            failed += 1
            logging.getLogger(__name__).debug("question %s failed", item["id"], exc_info=True)
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            print_json({"id": item["id"], "question": item["question"], "error": reason})
            continue
        record_answer(answer_log, answer, filters)
        if as_json:
            print_json({"id": item["id"], **answer.as_json()})
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

    not_blank(query, "query", "QUERY")
    passages = desk_for(settings_for(collection, server_url=server), "search").search(
        query, filters=make_filters(since, until, source, as_of), k=k
    )
    if as_json:
        print_json({"query": query, "results": [p.as_json() for p in passages]})
    else:
        render_passages(out, passages)


@app.command()
def stats(collection: Collection = None, as_json: Json = False, server: Server = None) -> None:
    """What is stored: documents, chunks, embedder and where the data lives."""
    data = desk_for(settings_for(collection, server_url=server), "stats").stats().model_dump()
    if as_json:
        print_json(data)
    else:
        for key, value in data.items():
            out.print(
                f"[bold]{key:>10}[/bold]  {value if value is not None else '-'}", highlight=False
            )


@app.command()
def sources(collection: Collection = None, as_json: Json = False, server: Server = None) -> None:
    """Outlets in the collection, with article counts and date ranges."""
    found = desk_for(settings_for(collection, server_url=server), "sources").sources()
    if as_json:
        print_json({"sources": [s.model_dump() for s in found]})
        return
    for s in found:
        span = " – ".join(x for x in (s.first_published, s.last_published) if x) or "undated"
        name = s.source or "(no source)"
        noun = "article" if s.articles == 1 else "articles"
        out.print(f"{name}  [dim]{s.articles} {noun} · {span}[/dim]", highlight=False)


def _add_other_commands() -> None:
    """After ingest … sources, in this order: chat, slack, serve, then eval and log."""
    import assistant.surfaces.cli_services  # noqa: F401  (registers chat, slack and serve)
    from assistant.surfaces.logs import app as log_app
    from evals.cli import app as eval_app

    app.add_typer(eval_app, name="eval")
    app.add_typer(log_app, name="log")


_add_other_commands()


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
