"""The chat's slash commands: ``/help``, ``/sources``, ``/open N``, the filters, ``/mode``,
``/save FILE``, feedback and ``/history``. Each is a function of the session and the text after
the command; a mistyped one gets one line naming the nearest command."""

from __future__ import annotations

import difflib
import getpass
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rich.markup import escape
from rich.text import Text

from assistant.answerlog import LogError
from assistant.errors import NewsdeskError
from assistant.surfaces.chat import ChatSession
from assistant.surfaces.render import plural, render_sources, source_line
from assistant.types import Answer, Conversation, Passage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    run: Callable[[ChatSession, str], None]
    usage: str
    help: str


COMMANDS: dict[str, Command] = {}
ALIASES = {"exit": "quit", "q": "quit", "?": "help"}


def command(name: str, usage: str, help: str) -> Callable[..., Callable[[ChatSession, str], None]]:
    def register(fn: Callable[[ChatSession, str], None]) -> Callable[[ChatSession, str], None]:
        COMMANDS[name] = Command(fn, usage, help)
        return fn

    return register


def run_command(session: ChatSession, message: str) -> None:
    name, _, arg = message[1:].partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    found = COMMANDS.get(name)
    if found is None:
        near = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.5)
        hint = f"did you mean /{near[0]}?" if near else "/help lists the commands"
        session.say(f"[yellow]unknown command /{escape(name)}; {hint}[/yellow]")
        return
    try:
        found.run(session, arg.strip())
    except NewsdeskError as exc:
        session.error(str(exc))
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        session.error(f"{exc.strerror or exc}{where}")


# -- help, quit --------------------------------------------------------------------------------
@command("help", "/help", "this list")
def _help(session: ChatSession, arg: str) -> None:
    width = max(len(c.usage) for c in COMMANDS.values())
    for c in COMMANDS.values():
        session.say(f"  [bold]{escape(c.usage.ljust(width))}[/bold]  {escape(c.help)}")
    session.say(
        '[dim]A line ending in \\ continues on the next; """ opens and closes a block. '
        "Ctrl-C cancels an answer, Ctrl-D quits.[/dim]"
    )


@command("quit", "/quit", "end the session (or Ctrl-D)")
def _quit(session: ChatSession, arg: str) -> None:
    session.running = False


# -- the last answer -------------------------------------------------------------------------
def _last(session: ChatSession) -> Answer | None:
    if session.last is None:
        session.say("[yellow]no answer yet: ask a question first[/yellow]")
    return session.last


@command("sources", "/sources", "the sources of the last answer")
def _sources(session: ChatSession, arg: str) -> None:
    answer = _last(session)
    if answer is None:
        return
    if answer.citations:
        render_sources(session.console, answer.citations)
        return
    session.say("[yellow]the last answer cites nothing[/yellow]; the passages it looked at:")
    for p in answer.passages:
        session.say(source_line(p.rank, p))


def _passage(answer: Answer, n: int) -> Passage | None:
    for c in answer.citations:
        if c.n == n:
            return c.passage
    return next((p for p in answer.passages if p.rank == n), None)


@command("open", "/open N", "passage N whole, with the text around it")
def _open(session: ChatSession, arg: str) -> None:
    answer = _last(session)
    if answer is None:
        return
    if not arg.isdigit():
        session.say("[yellow]usage: /open N (a source number of the last answer)[/yellow]")
        return
    passage = _passage(answer, int(arg))
    if passage is None:
        session.say(f"[yellow]the last answer has no source [{int(arg)}][/yellow]")
        return
    context = session.desk.passage_context(passage)
    session.say(source_line(int(arg), passage))
    where = passage.url or context.path
    if where:
        session.say(f"[dim]{escape(where)}[/dim]")
    text = Text()
    if context.before:
        text.append(("…" if passage.start and context.before else "") + context.before, "dim")
    text.append(passage.text, "bold")
    if context.after:
        text.append(context.after + "…", "dim")
    session.console.print(text)


# -- filters, k, mode --------------------------------------------------------------------------
def _day(arg: str) -> date | None:
    if arg.lower() in ("", "off", "none", "-"):
        return None
    try:
        return date.fromisoformat(arg)
    except ValueError:
        raise NewsdeskError(f"{arg!r} is not a date like 2022-03-07 (or 'off')") from None


def _show_filters(session: ChatSession) -> None:
    f = session.filters
    bits = [
        f"since {f.since}" if f.since else "",
        f"until {f.until}" if f.until else "",
        f"source {f.source}" if f.source else "",
    ]
    scope = ", ".join(b for b in bits if b) or "all articles"
    mode = "extractive" if session.extractive else "llm"
    k = session.k or session.settings.k
    session.say(f"[dim]filters: {escape(scope)} · k {k} · {mode} mode[/dim]")


@command("since", "/since DATE", "only articles published on/after DATE ('off' clears)")
def _since(session: ChatSession, arg: str) -> None:
    session.filters = session.filters.model_copy(update={"since": _day(arg)})
    _show_filters(session)


@command("until", "/until DATE", "only articles published on/before DATE ('off' clears)")
def _until(session: ChatSession, arg: str) -> None:
    session.filters = session.filters.model_copy(update={"until": _day(arg)})
    _show_filters(session)


@command("source", "/source NAME", "only articles from this outlet (no NAME clears)")
def _source(session: ChatSession, arg: str) -> None:
    if arg:
        known = [s.source for s in session.desk.sources() if s.source]
        if arg not in known:
            near = difflib.get_close_matches(arg, known, n=1, cutoff=0.4)
            hint = f"did you mean {near[0]!r}?" if near else "`newsdesk sources` lists them"
            session.say(f"[yellow]no source named {escape(arg)!r}; {escape(hint)}[/yellow]")
            return
    session.filters = session.filters.model_copy(update={"source": arg or None})
    _show_filters(session)


@command("filters", "/filters", "the filters, k and mode in effect")
def _filters(session: ChatSession, arg: str) -> None:
    _show_filters(session)


@command("k", "/k N", "use N passages per answer")
def _k(session: ChatSession, arg: str) -> None:
    if not arg.isdigit() or not 1 <= int(arg) <= 50:
        session.say("[yellow]usage: /k N with N from 1 to 50[/yellow]")
        return
    session.k = int(arg)
    _show_filters(session)


@command("mode", "/mode llm|extractive", "answer with the language model or quote the articles")
def _mode(session: ChatSession, arg: str) -> None:
    if arg not in ("llm", "extractive"):
        session.say("[yellow]usage: /mode llm or /mode extractive[/yellow]")
        return
    if arg == "llm" and not session.llm_available:
        session.say(
            "[yellow]no language model is configured "
            "(set OPENAI_API_KEY or NEWSDESK_LLM_BASE_URL)[/yellow]"
        )
        return
    session.extractive = arg == "extractive"
    _show_filters(session)


# -- the conversation ------------------------------------------------------------------------
@command("clear", "/clear", "start a new conversation (filters stay)")
def _clear(session: ChatSession, arg: str) -> None:
    session.conversation = Conversation()
    session.last, session.last_id = None, None
    session.say("[dim]new conversation[/dim]")


def conversation_markdown(conversation: Conversation) -> str:
    lines = [f"# newsdesk conversation {conversation.id[:8]}", ""]
    lines.append(f"_{conversation.created_at:%Y-%m-%d %H:%M} UTC_")
    for turn in conversation.turns:
        a = turn.answer
        lines += ["", f"## {turn.question}", ""]
        if a.standalone_question and a.standalone_question != turn.question:
            lines += [f"_searched: {a.standalone_question}_", ""]
        if a.notice:
            lines += [f"> {a.notice}", ""]
        lines.append(a.text)
        if a.citations:
            lines += ["", "**Sources**", ""]
        for c in a.citations:
            p = c.passage
            meta = " · ".join(x for x in (p.source, p.published_at[:10]) if x)
            link = f" — <{p.url}>" if p.url else ""
            lines.append(f"- **[{c.n}]** {p.title or 'Untitled article'}"
                         + (f" — {meta}" if meta else "") + link)  # fmt: skip
            if c.quote:
                lines.append(f"   > {c.quote}")
    return "\n".join(lines) + "\n"


@command("save", "/save FILE", "write the conversation and its sources as Markdown")
def _save(session: ChatSession, arg: str) -> None:
    if not arg:
        session.say("[yellow]usage: /save FILE[/yellow]")
        return
    path = Path(arg).expanduser()
    path.write_text(conversation_markdown(session.conversation), encoding="utf-8")
    n = len(session.conversation.turns)
    session.say(f"[dim]saved {plural(n, 'answer')} to {escape(str(path))}[/dim]")


def _feedback(session: ChatSession, verdict: str, note: str) -> None:
    if session.answer_log is None:
        session.say("[yellow]the answer log is off (NEWSDESK_LOG=false)[/yellow]")
        return
    if session.last_id is None:
        session.say("[yellow]no logged answer in this session to mark yet[/yellow]")
        return
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = ""
    try:
        session.answer_log.feedback(session.last_id, verdict, note, who)
    except LogError as exc:
        session.error(str(exc))
        return
    noted = f" ({escape(note)})" if note else ""
    session.say(f"[dim]marked log #{session.last_id} {verdict}{noted}[/dim]")


@command("good", "/good", "mark the last answer as good")
def _good(session: ChatSession, arg: str) -> None:
    _feedback(session, "good", arg)


@command("bad", "/bad [NOTE]", "mark the last answer as wrong, with an optional note")
def _bad(session: ChatSession, arg: str) -> None:
    _feedback(session, "bad", arg)


@command("history", "/history", "earlier conversations (resume with chat --conversation ID)")
def _history(session: ChatSession, arg: str) -> None:
    if session.answer_log is None:
        session.say("[yellow]the answer log is off (NEWSDESK_LOG=false)[/yellow]")
        return
    found = session.answer_log.conversations(limit=20, surface="chat")
    if not found:
        session.say("[dim]no earlier conversations[/dim]")
        return
    for c in found:
        here = " [bold](this one)[/bold]" if c.id == session.conversation.id else ""
        session.say(
            f"  [bold]{c.id[:8]}[/bold]  [dim]{c.last_at[:16].replace('T', ' ')} · "
            f"{plural(c.answers, 'answer')}[/dim]  {escape(c.first_question)}{here}"
        )
