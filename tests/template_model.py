"""A reply factory for ``FakeOpenAI.default`` that answers from per-question templates.

Used to script whole eval suites (``evals/suites/adversarial``) over the loopback fake server:
the reply to each answer prompt is chosen by its question and may cite passages by content
(``[@some words]``), wherever retrieval ranked them.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fake_openai import Reply
from tests.prompt_reading import passages_in

_ANCHOR = re.compile(r"\[@([^\]]+)\]")


class TemplateModel:
    """A default reply factory that answers answer prompts from templates, by question.

    ``templates`` maps a question to a reply in which ``[@some words]`` becomes the marker
    ``[n]`` of the first passage of the prompt containing those words (case-insensitive), so a
    scripted reply cites the passage that really holds the fact, wherever retrieval ranked it.
    An anchor found in no passage becomes ``[0]`` (out of range) and is listed in ``missed``.
    Follow-up prompts get the question back, option prompts "A", yes/no prompts "yes";
    a question without a template gets ``fallback``.
    """

    def __init__(self, templates: dict[str, str], fallback: str = "") -> None:
        self.templates = templates
        self.fallback = fallback
        self.rendered: dict[str, str] = {}  # question -> reply sent
        self.missed: list[tuple[str, str]] = []  # (question, anchor)

    def __call__(self, request: dict[str, Any]) -> Reply | str:
        messages = request.get("messages") or []
        prompt = "\n\n".join(str(m.get("content") or "") for m in messages)
        if "Follow-up question:" in prompt:
            return prompt.rsplit("Follow-up question:", 1)[1].strip().splitlines()[0]
        if "yes or no" in prompt.lower():
            return "yes"
        if "\nOptions:\n" in prompt:
            return "A"
        question = prompt.rsplit("Question:", 1)[-1].strip().splitlines()[0].strip()
        template = self.templates.get(question, self.fallback)
        passages = {n: text.lower() for n, text in passages_in(prompt).items()}

        def marker(match: re.Match[str]) -> str:
            anchor = match.group(1).lower()
            n = next((n for n, text in sorted(passages.items()) if anchor in text), 0)
            if not n:
                self.missed.append((question, match.group(1)))
            return f"[{n}]"

        text = _ANCHOR.sub(marker, template)
        self.rendered[question] = text
        return text
