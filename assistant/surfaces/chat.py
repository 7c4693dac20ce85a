"""``newsdesk chat``: a terminal conversation over the articles.

One :class:`~assistant.desk.Desk` for the whole session (the embedder loads once), one
:class:`~assistant.types.Conversation` whose turns are every question's ``history`` (so "and
what did the EU say?" is understood), every answer rendered by the shared
:class:`~assistant.surfaces.render.AnswerView` and logged to the answer log. Slash commands live
in :mod:`assistant.surfaces.chat_commands`.

Input: prompt_toolkit on a terminal (line editing, history in ``<home>/chat_history``), plain
lines from a pipe. A line ending in ``\\`` continues on the next; ``\"\"\"`` opens a block that
the next ``\"\"\"`` closes. Ctrl-C cancels the answer being produced (or the line being typed),
Ctrl-D or ``/quit`` ends the session.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from assistant.answerlog import AnswerLog, LogError
from assistant.desk import Desk
from assistant.errors import InputError, NewsdeskError
from assistant.settings import Settings
from assistant.surfaces.render import AnswerView, plural
from assistant.types import Answer, Conversation, Filters

if TYPE_CHECKING:
    from assistant.remote import RemoteDesk, RemoteLog

log = logging.getLogger(__name__)
PROMPT = "ask> "
CONTINUATION = "...  "
BLOCK = '"""'
Reader = Callable[[str], str]  # prompt -> line; EOFError at the end, KeyboardInterrupt on ^C


@dataclass
class ChatSession:
    """What a chat knows between turns; the slash commands read and change it."""

    desk: Desk | RemoteDesk  # a RemoteDesk with ``--server``
    console: Console
    answer_log: AnswerLog | RemoteLog | None
    filters: Filters = field(default_factory=Filters)
    k: int | None = None
    extractive: bool = True
    conversation: Conversation = field(default_factory=Conversation)
    last: Answer | None = None
    last_id: int | None = None
    running: bool = True

    @property
    def settings(self) -> Settings:
        return self.desk.settings

    @property
    def llm_available(self) -> bool:
        """Whether answers can come from a language model (the service's, with --server)."""
        return bool(getattr(self.desk, "llm_configured", self.settings.llm_configured))

    def say(self, markup: str) -> None:
        self.console.print(markup, highlight=False)

    def error(self, message: str) -> None:
        self.console.print(f"[red]error:[/red] {escape(message)}", highlight=False)

    def ask(self, question: str) -> None:
        """One turn: stream the answer, add it to the conversation, log it. Every failure is
        one line and the session goes on."""
        try:
            events = self.desk.stream(
                question, history=self.conversation, filters=self.filters, k=self.k,
                extractive=self.extractive,
            )  # fmt: skip
            answer = AnswerView(self.console).show(events, question, on_final=self._record)
        except KeyboardInterrupt:
            self.console.print("[yellow]cancelled[/yellow]")
            return
        except NewsdeskError as exc:
            self.error(str(exc))
            return
        except Exception as exc:  # a bug or an unexpected library error: one line, go on
            log.debug("answer failed", exc_info=True)
            self.error(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
            return
        self.conversation.add(answer)
        self.last = answer

    def _record(self, answer: Answer) -> str:
        self.last_id = None
        if self.answer_log is None:
            return ""
        try:
            self.last_id = self.answer_log.record(
                answer, surface="chat", conversation_id=self.conversation.id, filters=self.filters
            )
        except LogError as exc:
            self.error(f"answer not logged: {exc}")
            return ""
        return f"log #{self.last_id}"


def read_message(read: Reader) -> str:
    """One message: a line, lines joined by a trailing backslash, or a \"\"\" block."""
    line = read(PROMPT)
    stripped = line.strip()
    if stripped.startswith(BLOCK):
        rest = stripped[len(BLOCK) :]
        if rest.endswith(BLOCK):  # """one line"""
            return rest[: -len(BLOCK)]
        parts = [rest] if rest else []
        while True:
            nxt = read(CONTINUATION)
            if nxt.rstrip().endswith(BLOCK):
                parts.append(nxt.rstrip()[: -len(BLOCK)])
                return "\n".join(parts)
            parts.append(nxt)
    parts = []
    while line.endswith("\\"):
        parts.append(line[:-1])
        line = read(CONTINUATION)
    parts.append(line)
    return "\n".join(parts)


def make_reader(history: Path, console: Console) -> Reader:
    """prompt_toolkit on a terminal; plain lines from a pipe (scripts, tests)."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history.parent.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
        return lambda prompt: session.prompt(prompt)

    def read(prompt: str) -> str:
        console.file.write(prompt)
        console.file.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    return read


def _banner(session: ChatSession) -> None:
    try:
        stats = session.desk.stats()
    except NewsdeskError as exc:  # e.g. the store cannot be read: say so, let the user retry
        session.say("[bold]newsdesk chat[/bold]")
        session.error(str(exc))
        return
    mode = "extractive" if session.extractive else f"LLM ({stats.llm})"
    session.say(
        f"[bold]newsdesk chat[/bold] [dim]· collection {escape(stats.collection)} · "
        f"{plural(stats.documents, 'article')} · {mode} mode[/dim]"
    )
    if stats.chunks == 0:
        session.say(
            f"[yellow]nothing is ingested in collection {escape(stats.collection)!r} yet; run "
            "`newsdesk ingest PATH...` (another terminal will do) and ask again[/yellow]"
        )
    session.say("[dim]Ask a question; /help lists the commands, Ctrl-D or /quit ends.[/dim]")


def resume(answer_log: AnswerLog | None, latest: bool, conversation_id: str | None) -> Conversation:
    """The conversation to go on with: a new one, the latest chat, or a logged one by id."""
    if not latest and not conversation_id:
        return Conversation()
    if answer_log is None:
        raise InputError("the answer log is off (NEWSDESK_LOG=false): nothing to continue")
    if conversation_id is None:
        found = answer_log.conversations(limit=1, surface="chat")
        if not found:
            raise InputError("no earlier chat in the answer log to continue")
        conversation_id = found[0].id
    conversation = answer_log.conversation(conversation_id)
    if conversation is None:
        raise InputError(f"no conversation {conversation_id!r} in the answer log (see /history)")
    return conversation


def run_chat(
    settings: Settings,
    *,
    filters: Filters,
    k: int | None,
    extractive: bool,
    latest: bool = False,
    conversation_id: str | None = None,
    console: Console | None = None,
) -> int:
    """The chat loop; returns the exit code."""
    console = console or Console()
    library = logging.getLogger("assistant")
    level = library.level
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        # without -v, what goes wrong is said once, on screen, by the answer's notice or an
        # error line; the library's warnings about the same failure would repeat it
        library.setLevel(logging.ERROR)
    interrupt = _ctrl_c_cancels()
    try:
        return _run(settings, console, filters, k, extractive, latest, conversation_id)
    finally:
        library.setLevel(level)
        if interrupt is not None:
            signal.signal(signal.SIGINT, interrupt)


def _ctrl_c_cancels() -> Any:
    """Make Ctrl-C raise KeyboardInterrupt (it cancels the answer being produced) even when the
    parent left SIGINT ignored, as a shell does for a command started with ``&`` and Python
    then keeps; returns the handler to restore (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.default_int_handler)


def _run(
    settings: Settings,
    console: Console,
    filters: Filters,
    k: int | None,
    extractive: bool,
    latest: bool,
    conversation_id: str | None,
) -> int:
    from assistant.surfaces.chat_commands import run_command

    desk: Desk | RemoteDesk
    answer_log: AnswerLog | RemoteLog | None = None
    if settings.server_url:  # a thin client: the service answers and logs
        from assistant.remote import RemoteDesk, RemoteLog

        if latest or conversation_id:
            raise InputError("--continue and --conversation need the local answer log; "
                             "they are not available with --server")  # fmt: skip
        desk = RemoteDesk(settings, surface="chat")
        answer_log = RemoteLog(desk)
        conversation = Conversation()
    else:
        if settings.log:
            try:
                answer_log = AnswerLog.open(settings)
            except LogError as exc:
                console.print(
                    f"[yellow]warning:[/yellow] {escape(str(exc))}; answers are not logged"
                )
        conversation = resume(answer_log, latest, conversation_id)
        desk = Desk(settings)
    session = ChatSession(
        desk=desk, console=console, answer_log=answer_log, filters=filters, k=k,
        extractive=extractive, conversation=conversation,
    )  # fmt: skip
    try:
        try:
            session.extractive = extractive or not session.llm_available
        except NewsdeskError:
            session.extractive = True  # the banner says what is wrong
        _banner(session)
        if conversation.turns:
            first = conversation.turns[0].question
            session.say(
                f"[dim]continuing conversation {conversation.id[:8]} "
                f"({plural(len(conversation.turns), 'turn')}): {escape(first)}[/dim]"
            )
            session.last = conversation.turns[-1].answer
        read = make_reader(settings.home / "chat_history", console)
        while session.running:
            try:
                message = read_message(read).strip()
            except KeyboardInterrupt:
                continue  # ^C at the prompt drops the line, like a shell
            except EOFError:
                break
            if not message:
                continue
            try:
                if message.startswith("/"):
                    run_command(session, message)
                else:
                    session.ask(message)
            except KeyboardInterrupt:  # ^C during a slow command (or between two events)
                console.print("[yellow]cancelled[/yellow]")
    finally:
        desk.close()
        if answer_log is not None:
            answer_log.close()
    return 0
