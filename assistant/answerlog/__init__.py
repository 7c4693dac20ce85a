"""The answer log: every answer of every surface (``ask``, ``chat``, the Slack bot), with the
feedback users give, in ``logs.db`` in the data home. See :class:`AnswerLog`."""

from assistant.answerlog.store import (
    VERDICTS,
    AnswerLog,
    ConversationSummary,
    Feedback,
    LogEntry,
    LogError,
)

__all__ = ["VERDICTS", "AnswerLog", "ConversationSummary", "Feedback", "LogEntry", "LogError"]
