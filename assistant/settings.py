"""The one typed settings object: environment (``NEWSDESK_*``), an optional TOML file, defaults.

Secrets come only from the environment and are held as :class:`SecretStr`, so they never show up
in a repr, a log line or ``stats`` output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.errors import ConfigError
from assistant.types import Filters


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "newsdesk"


def _config_file() -> Path | None:
    explicit = os.environ.get("NEWSDESK_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"NEWSDESK_CONFIG points at {path}, which is not a file")
        return path
    home = os.environ.get("NEWSDESK_HOME")
    candidate = (Path(home).expanduser() if home else default_home()) / "config.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """Everything newsdesk can be told. Env vars are ``NEWSDESK_<FIELD>`` unless noted."""

    model_config = SettingsConfigDict(env_prefix="NEWSDESK_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=default_home)
    collection: str = "news"
    # A Chroma server (``chroma run``, or a hosted one) instead of the embedded store under
    # ``home``: chroma_url (http(s)://host[:port][/path]), or the older chroma_host + _port.
    chroma_url: str | None = None
    chroma_host: str | None = None
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    # Sent with every request: "Authorization: Bearer <token>", or "X-Chroma-Token: <token>".
    chroma_token: SecretStr | None = None
    chroma_auth_header: Literal["Authorization", "X-Chroma-Token"] = "Authorization"
    # Where on the server the collection lives; Chroma's defaults (chromadb.DEFAULT_TENANT /
    # DEFAULT_DATABASE). Both must exist: newsdesk never creates a tenant or a database.
    chroma_tenant: str = Field(default="default_tenant", min_length=1)
    chroma_database: str = Field(default="default_database", min_length=1)

    # Embeddings: the bundled ONNX MiniLM (offline) or any OpenAI-compatible server.
    embedder: Literal["minilm", "openai"] = "minilm"
    embed_model: str = "text-embedding-3-small"
    embed_base_url: str | None = None
    embed_batch_size: int = Field(default=2, ge=1, le=256)
    # Run the MiniLM through onnxruntime's fused attention/GELU kernels (same vectors, faster).
    embed_fused_graph: bool = True

    # Chunking.
    chunk_tokens: int = Field(default=230, ge=32, le=240)
    chunk_overlap_tokens: int = Field(default=30, ge=0, le=100)
    # Ingest limits. An article over max_article_mb is skipped, and so is a file over it in a
    # format read whole (.txt .md .html .pdf); .jsonl/.jsonl.gz archives stream at any size.
    max_article_mb: float = Field(default=25.0, gt=0)
    # An article is cut after this many chunks (with a warning). Its chunks go to Chroma in
    # one write, so it is invisible to search until all are stored: at most Chroma's batch.
    max_chunks_per_article: int = Field(default=1000, ge=1, le=5000)

    # Retrieval.
    # HNSW search breadth: Chroma's default (100) found 95.7% of the exact 60 nearest chunks on
    # the 41k-chunk dev corpus, 500 finds 99.4% at the same latency (docs/benchmarks.md).
    hnsw_ef_search: int = Field(default=500, ge=10, le=10_000)
    k: int = Field(default=6, ge=1, le=50)
    candidates: int = Field(default=60, ge=5, le=500)
    per_article_cap: int = Field(default=2, ge=1)
    # Abstain when dense_weight x (best passage's cosine similarity) + (IDF-weighted share of
    # the question's terms in the best passage) is below min_score. Calibrated on labelled
    # questions (benchmarks/calibrate.py; numbers in docs/benchmarks.md).
    abstain_min_score: float = Field(default=1.2, ge=0)
    abstain_dense_weight: float = Field(default=1.0, ge=0)
    # Recency: fused scores are multiplied by a prior on article age (days before the
    # question's as-of date), fitted by benchmarks/recency.py into
    # assistant/index/recency_prior.json; recency_weight overrides the fitted weight (0: off).
    recency_prior: bool = True
    recency_weight: float | None = Field(default=None, ge=0)

    # Language model. OPENAI_API_KEY is read as is (no prefix), like every OpenAI tool does.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEWSDESK_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_temperature: float = 0.0
    # The model's context window: passages and conversation history are budgeted with the
    # model's own tiktoken encoding to fit it together with the reply.
    llm_context_tokens: int = Field(default=16_000, ge=1_024)
    # Completion budget sent with every call; a reply cut at it is reported as truncated.
    llm_max_tokens: int = Field(default=700, ge=16, le=32_000)
    # Bound on one answer's model calls, retries and backoff included (default 2 x timeout).
    llm_deadline_s: float | None = Field(default=None, gt=0)
    extractive: bool = False

    # Verification: after the offline check, ask the LLM whether each kept sentence follows
    # from its passage (can only remove more, never restore an offline rejection).
    verify_with_llm: bool = False
    # What happens to a sentence of an LLM answer that fails verification: removed (listed in
    # the answer's ``removed``), or kept and visibly marked "[unsupported]".
    unsupported_sentences: Literal["remove", "mark"] = "remove"

    # The eval citation judge: a separately configured model; the offline proxy when unset.
    judge_model: str | None = None
    judge_base_url: str | None = None
    judge_api_key: SecretStr | None = None

    # The answer log (``logs.db`` in the home): every answer of every surface, with feedback.
    log: bool = True

    # The Slack bot (``newsdesk slack``). Its credentials are Slack's own variable names.
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEWSDESK_SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("NEWSDESK_SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),
    )
    slack_app_token: SecretStr | None = Field(  # set: Socket Mode instead of HTTP
        default=None, validation_alias=AliasChoices("NEWSDESK_SLACK_APP_TOKEN", "SLACK_APP_TOKEN")
    )
    # The Slack Web API base URL (tests, proxies, Enterprise Grid gateways).
    slack_api_url: str = "https://slack.com/api/"
    # Channel ids the bot answers in (comma-separated or a JSON list); empty: every channel it
    # is in. Direct messages are always answered.
    slack_channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Default filters per channel id, e.g. {"C0123": {"source": "Reuters", "since": "2024-01-01"}}
    slack_channel_filters: dict[str, Filters] = Field(default_factory=dict)
    # Questions answered at once (different threads; one thread's questions go in order).
    slack_workers: int = Field(default=4, ge=1, le=64)
    # LLM mode without chat streaming: at most one chat.update per this many seconds.
    slack_update_interval_s: float = Field(default=1.0, ge=0.2)

    # The team service (``newsdesk serve``) and its thin clients (``--server``, the Slack bot).
    # Every /v1 route needs ``Authorization: Bearer <api_token>`` when it is set; serve refuses
    # a non-loopback host without it. Clients send it to ``server_url``.
    api_token: SecretStr | None = None
    server_url: str | None = None  # set: ask/chat/search/stats/sources/slack use this service
    serve_max_request_kb: int = Field(default=256, ge=1, le=65_536)  # larger bodies: 413
    serve_client_concurrency: int = Field(default=8, ge=1, le=1024)  # per token/address: 429

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not (3 <= len(value) <= 63) or not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("must be 3-63 letters, digits, '-' or '_'")
        return value

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip()
        problem = _url_problem(text)
        if problem:
            shown = text
            if "@" in text:  # never echo a password
                scheme, sep, rest = text.partition("://")
                shown = scheme + sep + "***@" + rest.rpartition("@")[2]
            raise ValueError(f"{shown!r} {problem}; expected http(s)://host[:port][/path]")
        return text.rstrip("/")

    @field_validator("chroma_auth_header", mode="before")
    @classmethod
    def _auth_header(cls, value: Any) -> Any:
        if isinstance(value, str):  # header names are case-insensitive
            for name in ("Authorization", "X-Chroma-Token"):
                if value.strip().lower() == name.lower():
                    return name
        return value

    @model_validator(mode="after")
    def _one_chroma_server(self) -> Settings:
        if self.chroma_url and self.chroma_host:
            raise ValueError(
                "both NEWSDESK_CHROMA_URL and NEWSDESK_CHROMA_HOST are set; keep only one"
            )
        return self

    @field_validator("slack_channels", mode="before")
    @classmethod
    def _channel_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [c.strip() for c in text.split(",") if c.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # -- derived -------------------------------------------------------------------------
    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.openai_api_key)

    @property
    def answer_deadline_s(self) -> float:
        """Seconds one answer may spend on model calls, retries included."""
        return self.llm_deadline_s or 2 * self.llm_timeout_s

    @property
    def use_llm(self) -> bool:
        return self.llm_configured and not self.extractive

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def cache_path(self) -> Path:
        return self.home / "cache"

    @property
    def log_path(self) -> Path:
        return self.home / "logs.db"

    @property
    def uses_chroma_server(self) -> bool:
        """True for a Chroma server (``chroma_url`` or ``chroma_host``), False for the
        embedded store under ``home``."""
        return bool(self.chroma_url or self.chroma_host)

    @property
    def chroma_server_url(self) -> str | None:
        """The server's URL (``chroma_url``, or one made of the older host and port)."""
        if self.chroma_url:
            return self.chroma_url
        if not self.chroma_host:
            return None
        if self.chroma_host.startswith(("http://", "https://")):  # chromadb takes a URL here
            return self.chroma_host.rstrip("/")
        host = f"[{self.chroma_host}]" if ":" in self.chroma_host else self.chroma_host
        return f"http://{host}:{self.chroma_port}"

    def describe_store(self) -> str:
        """Where the passages are, for messages and ``stats`` (never the token)."""
        if self.uses_chroma_server:
            return (
                f"chroma server {self.chroma_server_url} "
                f"(tenant {self.chroma_tenant}, database {self.chroma_database})"
            )
        return str(self.chroma_path)


def _url_problem(text: str) -> str | None:
    """Why ``text`` is not a usable Chroma server URL, or None."""
    from urllib.parse import urlsplit

    if any(ch.isspace() or not ch.isprintable() for ch in text):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError:
        return "has an invalid port"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "carries credentials; set NEWSDESK_CHROMA_TOKEN instead"
    if parts.query or parts.fragment:
        return "has a query or fragment"
    return None


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one friendly :class:`ConfigError`."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        if not field:  # a check across fields names its variables itself
            raise ConfigError(f"invalid settings: {err['msg']}") from None
        raise ConfigError(
            f"invalid setting {field} (NEWSDESK_{field.upper()}): {err['msg']}"
        ) from None
