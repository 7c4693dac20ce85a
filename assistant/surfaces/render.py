"""Human output for the terminal (rich); machine output is ``Answer.as_json``.

:class:`AnswerView` is the one renderer of answers, shared by ``ask`` and ``chat``: it shows an
answer while it is produced (LLM text streams as it arrives) and then the final checked answer
(markers the check dropped are gone, unsupported sentences are marked, a fallback is said) with
its numbered sources. Three ways to show the stream, chosen from the console:

- ``live`` (a terminal with colour): a transient live region that the checked answer replaces;
- ``plain`` (a terminal with ``NO_COLOR``): the text is written as it arrives, and the checked
  answer follows under "Checked answer:" only when the check changed it;
- ``final`` (not a terminal: a pipe or a file): nothing until the checked answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Literal

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text

from assistant.types import Answer, Citation, Event, Final, Notice, Passage, PassagesFound

Style = Literal["live", "plain", "final"]
_UNSUPPORTED = re.compile(r"\[unsupported\]")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 passage``, ``2 passages`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def source_line(n: int, p: Passage) -> str:
    """``[n] Title — Outlet · 2022-03-07`` (rich markup)."""
    when = p.published_at[:10]
    bits = " · ".join(escape(x) for x in (p.source, when) if x)
    title = escape(p.title or "Untitled article")
    return f"[bold][{n}][/bold] {title}" + (f" [dim]— {bits}[/dim]" if bits else "")


def answer_text(answer: Answer) -> Text:
    """The answer's text; abstentions in yellow, "[unsupported]" marks in red."""
    text = Text(answer.text, style="yellow" if answer.abstained else "")
    for m in _UNSUPPORTED.finditer(answer.text):
        text.stylize("bold red", m.start(), m.end())
    return text


def render_sources(console: Console, citations: list[Citation]) -> None:
    """Numbered sources: title, outlet, date, the quoted span, the link."""
    console.print("[bold]Sources[/bold]")
    by_number: dict[int, list[Citation]] = {}
    for c in citations:  # one entry per article number, however many of its passages
        by_number.setdefault(c.n, []).append(c)
    for n, same in by_number.items():
        first = same[0]
        ok = all(c.supported for c in same)
        mark = "" if ok else " [red](claim not supported by this passage)[/red]"
        console.print(source_line(n, first.passage) + mark, highlight=False)
        also = sorted({name for c in same for name in c.also_reported_by})
        if also:
            console.print(Padding(Text(f"also reported by {', '.join(also)}", style="dim"),
                                  (0, 0, 0, 4)))  # fmt: skip
        for c in same:
            if c.quote:
                quoted = c.quote if c.quote[0] in "“\"'‘" else f"“{c.quote}”"
                console.print(Padding(Text(quoted, style="italic"), (0, 0, 0, 4)))
        if first.passage.location:
            console.print(Padding(Text(first.passage.location, style="dim"), (0, 0, 0, 4)))


def footer(answer: Answer, extra: str = "") -> str:
    bits = [
        answer.mode,
        plural(len(answer.passages), "passage"),
        f"{answer.timings.get('total_ms', 0):.0f} ms",
    ]
    return "[dim]" + escape(" · ".join([*bits, *([extra] if extra else [])])) + "[/dim]"


def render_answer(
    console: Console, answer: Answer, *, text: bool = True, notice: bool = True, extra: str = ""
) -> None:
    """The checked answer: notice, text, sources, one line of mode/passages/time."""
    if notice and answer.notice:
        console.print(f"[dim]{escape(answer.notice)}[/dim]", highlight=False)
    if text:
        console.print(answer_text(answer))
    if answer.citations:
        console.print()
        render_sources(console, answer.citations)
    console.print(footer(answer, extra), highlight=False)


def style_of(console: Console) -> Style:
    if not console.is_terminal:
        return "final"
    return "plain" if console.no_color or console.is_dumb_terminal else "live"


class AnswerView:
    """Shows one answer from its events; :meth:`show` returns the checked answer."""

    def __init__(self, console: Console, style: Style | None = None) -> None:
        self.console = console
        self.style = style or style_of(console)
        self._open_line = False  # plain style: streamed text not yet ended by a newline

    def show(
        self,
        events: Iterable[Event],
        question: str,
        *,
        on_final: Callable[[Answer], str] | None = None,
    ) -> Answer:
        """Consume ``events`` (closing them on Ctrl-C or an error) and render the answer.
        ``on_final``: called with the checked answer before it is shown; what it returns is
        added to the footer line (the chat logs the answer there and shows its log id)."""
        streamed: list[str] = []
        notices: list[str] = []
        live: Live | None = None
        answer: Answer | None = None
        try:
            for event in events:
                if isinstance(event, PassagesFound):
                    self._standalone(question, event.standalone_question)
                elif isinstance(event, Notice):
                    self._stop(live)
                    live = None
                    if event.kind != "abstain":
                        notices.append(event.text)
                        self.console.print(
                            f"[yellow]{escape(event.text)}[/yellow]", highlight=False
                        )
                    if event.kind == "fallback":
                        streamed.clear()  # the extractive answer starts over
                elif isinstance(event, Final):
                    answer = event.answer
                else:  # TextDelta
                    streamed.append(event.text)
                    live = self._delta(live, streamed, event.text)
        finally:
            self._stop(live)
            close = getattr(events, "close", None)
            if close is not None:
                close()
        if answer is None:
            raise RuntimeError("the answer ended without a final answer")
        extra = on_final(answer) if on_final is not None else ""
        shown = "".join(streamed)
        same = self.style == "plain" and _same(shown, answer.text)
        if self.style == "plain" and shown and not same:
            self.console.print("[bold]Checked answer:[/bold]")
        unseen = answer.notice and not any(n in answer.notice for n in notices)
        if notices and answer.notice and not unseen:
            # said while streaming; show only what the final notice adds (e.g. the label)
            rest = answer.notice
            for n in notices:
                rest = rest.replace(n, "")
            if rest.strip():
                self.console.print(f"[dim]{escape(rest.strip())}[/dim]", highlight=False)
        render_answer(self.console, answer, text=not same, notice=bool(unseen), extra=extra)
        return answer

    def _standalone(self, typed: str, standalone: str) -> None:
        if standalone and not _same(standalone, typed):
            self.console.print(Text(f"→ searching: {' '.join(standalone.split())}", style="dim"))

    def _delta(self, live: Live | None, streamed: list[str], piece: str) -> Live | None:
        if self.style == "plain":
            self.console.file.write(piece)
            self.console.file.flush()
            self._open_line = not piece.endswith("\n")
        elif self.style == "live":
            if live is None:
                live = Live(console=self.console, transient=True, auto_refresh=False)
                live.start()
            live.update(Text("".join(streamed)), refresh=True)
        return live

    def _stop(self, live: Live | None) -> None:
        """End the live region or the streamed line."""
        if live is not None:
            live.stop()
        if self._open_line:
            self.console.file.write("\n")
            self.console.file.flush()
            self._open_line = False


def render_passages(console: Console, passages: list[Passage]) -> None:
    """Search results: each passage whole, wrapped to the terminal."""
    if not passages:
        console.print("[yellow]No matching passages.[/yellow]")
        return
    for p in passages:
        head = source_line(p.rank, p) + f" [dim]score {p.score:.4f}[/dim]"
        console.print(head, highlight=False)
        console.print(Panel(Group(Text(p.text)), expand=True), soft_wrap=False)  # never cropped
