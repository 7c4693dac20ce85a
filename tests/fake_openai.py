"""A tiny OpenAI-compatible HTTP server for tests.

It speaks the real wire protocol over loopback, so the real ``openai`` client and
``langchain_openai`` classes can talk to it unchanged::

    with FakeOpenAI() as fake:
        fake.script("Hello there.", Reply(status=429, headers={"retry-after": "0"}))
        client = openai.OpenAI(base_url=fake.base_url, api_key="test")

Endpoints: ``POST /v1/chat/completions`` (plain and SSE streaming), ``POST /v1/embeddings``
(deterministic hash-based vectors, float or base64) and ``GET /v1/models``. Anything else
answers 404 with an OpenAI-style error body. Standard library only.

Misbehaving servers are scripted with ``Reply(mode=...)`` (see ``MODES``): an HTML page or
malformed JSON with status 200, a body that is not a chat completion, the text without its
citation markers or with an uncited invention added, a stream that ends
without a ``finish_reason`` or carries no event at all, a stream that never finishes
(keep-alive comments, or silence), an error that echoes the request's API key. Every reply
honours the request's ``max_tokens`` / ``max_completion_tokens`` (one word-sized piece is one
token; a cut reply has ``finish_reason`` "length"), and ``Reply(usage=False)`` leaves usage out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socketserver
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

__all__ = [
    "EMBEDDING_DIM", "INVENTION", "MODEL_ID", "MODES", "FakeOpenAI", "Reply", "fake_embedding",
]  # fmt: skip

MODEL_ID = "fake-model"
EMBEDDING_DIM = 16

_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


MODES = (
    "normal",  # the text, as a completion or a stream
    "html",  # status 200, an HTML page (a proxy's login or error page)
    "bad-json",  # status 200, JSON cut off mid-object (a stream: a data line cut off)
    "wrong-schema",  # status 200, valid JSON that is not a chat completion
    "no-finish",  # the text, then the stream ends with no finish_reason ([DONE] still sent)
    "empty-stream",  # status 200, a stream with no event but [DONE]
    "hang",  # the first chunk, then keep-alive comments every keepalive_s (0: silence) forever
    "echo-key",  # an error (``status``, 401 by default) whose message repeats the API key
    "no-markers",  # the text with every citation marker [n] taken out
    "invent",  # the text plus an uncited invented sentence (INVENTION)
)
INVENTION = "Officials also confirmed that 42 inspectors arrived in Geneva on Sunday."
_MARKERS = re.compile(r"\s*\[\d+(?:\s*[,;–-]\s*\d+)*\]")


@dataclass
class Reply:
    """One scripted response for ``/v1/chat/completions``."""

    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 50
    completion_tokens: int = 20
    mode: str = "normal"
    usage: bool = True  # False: the server reports no token usage at all
    keepalive_s: float = 0.2  # "hang": seconds between keep-alive comments; 0 sends nothing
    hang_s: float = 60.0  # "hang": give up after this long (keeps stray threads bounded)
    interval_s: float = 0.0  # a stream: seconds between its pieces (a slow model)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown Reply mode {self.mode!r}; one of {MODES}")


ReplyFactory = Callable[[dict[str, Any]], Reply | str]


def _as_reply(value: Reply | str) -> Reply:
    return value if isinstance(value, Reply) else Reply(text=value)


def _error_body(status: int, message: str) -> dict[str, Any]:
    err_type, code = _ERROR_TYPES.get(
        status, ("server_error", "server_error") if status >= 500 else ("api_error", "api_error")
    )
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def split_stream_pieces(text: str) -> list[str]:
    """Split ``text`` into word-sized pieces whose concatenation is exactly ``text``."""
    return re.findall(r"\s*\S+|\s+$", text)


def fake_embedding(key: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """Deterministic, L2-normalised vector for ``key`` (values exactly representable as f32)."""
    raw = b""
    counter = 0
    while len(raw) < 2 * dim:
        raw += hashlib.sha256(f"{counter}:{key}".encode()).digest()
        counter += 1
    values = [int.from_bytes(raw[2 * i : 2 * i + 2], "little") / 32767.5 - 1.0 for i in range(dim)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    normalised = [v / norm for v in values]
    # Round-trip through float32 so float and base64 encodings decode to identical values.
    return list(struct.unpack(f"<{dim}f", struct.pack(f"<{dim}f", *normalised)))


def _embedding_inputs(raw: object) -> list[tuple[str, int]]:
    """Normalise an embeddings ``input`` into (hash key, token count) pairs."""
    if isinstance(raw, str):
        items: list[object] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        items = [raw]  # a single list of token ids
    elif isinstance(raw, list):
        items = list(raw)
    else:
        raise ValueError("'input' must be a string, a list of strings or a list of token lists")
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, str):
            out.append((item, max(1, len(item.split()))))
        elif isinstance(item, list) and all(isinstance(x, int) for x in item):
            out.append((json.dumps(item), max(1, len(item))))
        else:
            raise ValueError("each 'input' item must be a string or a list of token ids")
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn(), which can stall on odd DNS setups.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, cancelled streams) are expected; anything else is
        # reported by the handler itself as a 500.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle(self) -> None:
        try:
            super().handle()
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    # ------------------------------------------------------------------ routing

    def do_GET(self) -> None:
        if self._path() == "/v1/models":
            created = int(time.time())
            model = {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "fake"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._not_found()

    def do_POST(self) -> None:
        path = self._path()
        body = self._read_body()
        if path not in ("/v1/chat/completions", "/v1/embeddings"):
            self._not_found()
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            self._send_json(400, _error_body(400, f"Request body is not valid JSON: {exc}"))
            return
        if not isinstance(request, dict):
            self._send_json(400, _error_body(400, "Request body must be a JSON object."))
            return
        if path == "/v1/chat/completions":
            self._chat(request)
        else:
            self._embeddings(request)

    def do_PUT(self) -> None:
        self._read_body()
        self._not_found()

    def do_PATCH(self) -> None:
        self._read_body()
        self._not_found()

    def do_DELETE(self) -> None:
        self._read_body()
        self._not_found()

    # ------------------------------------------------------------------ endpoints

    def _chat(self, request: dict[str, Any]) -> None:
        fake = self.fake
        fake._record(fake.requests, request)
        try:
            reply = fake._next_reply(request)
        except Exception as exc:  # a failing default callable must not kill the server
            msg = f"FakeOpenAI default reply raised {type(exc).__name__}: {exc}"
            self._send_json(500, _error_body(500, msg), {"x-should-retry": "false"})
            return
        if reply is None:
            msg = (
                f"FakeOpenAI script exhausted: no scripted reply left for request "
                f"#{len(fake.requests)} and no default set."
            )
            self._send_json(500, _error_body(500, msg), {"x-should-retry": "false"})
            return
        if reply.delay_s > 0 and fake._stopping.wait(reply.delay_s):
            self.close_connection = True
            return
        if reply.mode == "echo-key":
            status = reply.status if reply.status != 200 else 401
            auth = self.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ").strip()
            message = f"Incorrect API key provided: {key}. Header was '{auth}'."
            self._send_json(status, _error_body(status, message), reply.headers)
            return
        if reply.status != 200:
            message = reply.text or f"FakeOpenAI scripted error (HTTP {reply.status})."
            self._send_json(reply.status, _error_body(reply.status, message), reply.headers)
            return
        if reply.mode in _RAW_BODIES:
            kind, plain, streamed = _RAW_BODIES[reply.mode]
            if request.get("stream") is True and reply.mode != "html":
                self._send_stream([streamed.encode()], reply.headers)
            else:
                self._send_raw(
                    200,
                    kind,
                    (streamed if request.get("stream") else plain).encode(),
                    reply.headers,
                )
            return
        text, finish = _within_budget(reply, request)
        if request.get("stream") is True:
            self._chat_stream(request, reply, text, finish)
            return
        completion = {
            "id": fake._new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request.get("model") or MODEL_ID),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": None if reply.mode == "no-finish" else finish,
                }
            ],
            "system_fingerprint": "fp_fake",
        }
        if reply.usage:
            completion["usage"] = _usage(reply)
        self._send_json(200, completion, reply.headers)

    def _chat_stream(self, request: dict[str, Any], reply: Reply, text: str, finish: str) -> None:
        stream_options = request.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(
            stream_options.get("include_usage")
        )
        base: dict[str, Any] = {
            "id": self.fake._new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": str(request.get("model") or MODEL_ID),
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            out = {**base, "choices": [choice]}
            if include_usage:
                out["usage"] = None
            return out

        def events() -> Iterator[dict[str, Any]]:
            if reply.mode == "empty-stream":
                return
            yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
            for piece in split_stream_pieces(text):
                yield chunk({"content": piece}, None)
            if reply.mode != "no-finish":
                yield chunk({}, finish)
            if include_usage and reply.usage:
                yield {**base, "choices": [], "usage": _usage(reply)}

        if reply.mode == "hang":
            self._hang(chunk({"role": "assistant", "content": "", "refusal": None}, None), reply)
            return
        self._send_stream(
            [f"data: {json.dumps(event)}\n\n".encode() for event in events()],
            reply.headers,
            reply.interval_s,
        )

    def _hang(self, first: dict[str, Any], reply: Reply) -> None:
        """A stream that starts and never finishes: keep-alive comments, or nothing at all."""
        self._stream_headers({})
        self._write_chunk(f"data: {json.dumps(first)}\n\n".encode())
        until = time.monotonic() + reply.hang_s
        pause = reply.keepalive_s if reply.keepalive_s > 0 else 0.1
        while time.monotonic() < until and not self.fake._stopping.wait(pause):
            if reply.keepalive_s > 0:
                self._write_chunk(b": keep-alive\n\n")
        self.close_connection = True

    def _stream_headers(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_stream(
        self, events: list[bytes], headers: dict[str, str], interval_s: float = 0.0
    ) -> None:
        self._stream_headers(headers)
        for i, event in enumerate(events):
            if i and interval_s > 0 and self.fake._stopping.wait(interval_s):
                return
            self._write_chunk(event)
        # [DONE] and the zero-length terminating chunk go out in one write. (The sync openai
        # client stops reading at [DONE] and drops the socket; that is fine, it reconnects.)
        self._write_chunk(b"data: [DONE]\n\n", last=True)

    def _embeddings(self, request: dict[str, Any]) -> None:
        fake = self.fake
        fake._record(fake.embedding_requests, request)
        try:
            inputs = _embedding_inputs(request.get("input"))
        except ValueError as exc:
            self._send_json(400, _error_body(400, str(exc)))
            return
        dims = request.get("dimensions")
        dim = dims if isinstance(dims, int) and dims > 0 else EMBEDDING_DIM
        as_base64 = request.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for index, (key, _) in enumerate(inputs):
            vector = fake_embedding(key, dim)
            encoded: list[float] | str = (
                base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode("ascii")
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count for _, count in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(request.get("model") or "fake-embed"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # ------------------------------------------------------------------ helpers

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _not_found(self) -> None:
        message = f"Unknown request URL: {self.command} {self.path}."
        self._send_json(404, _error_body(404, message))

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_raw(
        self, status: int, content_type: str, data: bytes, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _write_chunk(self, data: bytes, *, last: bool = False) -> None:
        terminator = b"0\r\n\r\n" if last else b""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" + terminator)
        self.wfile.flush()


_HTML = (
    "<!doctype html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>"
)
# mode -> (content type, plain body, stream body); HTML is sent as a page even to a stream
_RAW_BODIES: dict[str, tuple[str, str, str]] = {
    "html": ("text/html; charset=utf-8", _HTML, _HTML),
    "bad-json": (
        "application/json",
        '{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"mess',
        'data: {"id": "chatcmpl-x", "choices": [{"delta": \n\n',
    ),
    "wrong-schema": (
        "application/json",
        '{"result": "ok", "items": [1, 2]}',
        'data: {"result": "ok", "items": [1, 2]}\n\n',
    ),
}


def _max_tokens(request: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _within_budget(reply: Reply, request: dict[str, Any]) -> tuple[str, str]:
    """(text, finish_reason): the reply cut to the request's token budget, one piece a token."""
    budget = _max_tokens(request)
    text = reply.text
    if reply.mode == "no-markers":
        text = _MARKERS.sub("", text)
    elif reply.mode == "invent":
        text = f"{text} {INVENTION}".strip()
    pieces = split_stream_pieces(text)
    if budget is None or len(pieces) <= budget:
        return text, "stop"
    return "".join(pieces[:budget]), "length"


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


class FakeOpenAI:
    """A scripted OpenAI-compatible server on 127.0.0.1 (random port), run in a daemon thread."""

    def __init__(self) -> None:
        self.default: Reply | ReplyFactory | None = None
        self.requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in Reply.delay_s
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; call start() first")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ scripting

    def script(self, *replies: Reply | str) -> None:
        """Queue replies for ``/chat/completions``, consumed first-in first-out."""
        with self._lock:
            self._queue.extend(_as_reply(r) for r in replies)

    @property
    def pending(self) -> int:
        """Number of scripted replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    def _next_reply(self, request: dict[str, Any]) -> Reply | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            default = self.default
        if default is None:
            return None
        if isinstance(default, Reply):
            return default
        return _as_reply(default(request))

    def _record(self, target: list[dict[str, Any]], request: dict[str, Any]) -> None:
        with self._lock:
            target.append(request)

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}-fake{self._counter:06d}"
