"""The long-running commands: ``newsdesk chat``, ``newsdesk slack`` and ``newsdesk serve``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from assistant.errors import NewsdeskError
from assistant.surfaces.cli_common import (
    Collection,
    K,
    Server,
    Since,
    Source,
    Until,
    app,
    err,
    make_filters,
    not_blank,
    reading_console,
    settings_for,
)


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
    settings = settings_for(collection, extractive=extractive or None, server_url=server)
    code = run_chat(
        settings, filters=make_filters(since, until, source), k=k, extractive=extractive,
        latest=latest, conversation_id=conversation, console=reading_console(),
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
    settings = settings_for(collection, extractive=extractive or None)
    try:
        from assistant.surfaces.slack import blocks
    except ImportError:
        raise NewsdeskError(
            "the Slack bot needs slack_bolt: pip install 'newsdesk[slack]'"
        ) from None
    if render_blocks is not None:
        from assistant.desk import Desk

        not_blank(render_blocks, "question", "--render-blocks")
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
    settings = settings_for(collection, extractive=extractive or None)
    try:
        from assistant.surfaces.service.server import check_bind
        from assistant.surfaces.service.server import serve as run
    except ImportError:
        raise NewsdeskError(
            "the service needs fastapi and uvicorn: pip install 'newsdesk[serve]'"
        ) from None
    check_bind(settings, host)
    run(settings, host, port, workers=workers, say=lambda line: err.print(line, highlight=False))
