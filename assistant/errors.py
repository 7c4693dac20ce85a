"""Errors a user can cause, translated to friendly one-line text at the edges (CLI, Slack)."""

from __future__ import annotations


class NewsdeskError(Exception):
    """Base class for errors that carry a message fit to show a user as is."""

    exit_code = 1


class ConfigError(NewsdeskError):
    """Settings, config file or environment are invalid."""


class PromptError(ConfigError):
    """A prompt file is missing or its placeholders do not match what the code fills in."""


class EmbedderMismatchError(ConfigError):
    """The collection was built by another embedder or chunker than the one configured."""


class StoreError(NewsdeskError):
    """The vector store cannot be opened or queried."""


class EmptyCollectionError(NewsdeskError):
    """Nothing has been ingested into the collection yet."""


class InputError(NewsdeskError):
    """A file or record handed to newsdesk cannot be used (one-line reason in the message)."""


class LLMError(NewsdeskError):
    """The language model could not be reached or answered with an error after retries."""


class UsageError(NewsdeskError):
    """A request the store cannot mean: an unknown source, a date range that ends before it
    starts. The message names the value and what would be valid."""


class ServiceError(NewsdeskError):
    """The newsdesk service (``--server``, ``NEWSDESK_SERVER_URL``) cannot be reached, refused
    the request or failed; the message says which, in one line."""
