"""A fake Slack Web API on 127.0.0.1 (random port) that records every call, plus helpers to
send the bot signed requests as Slack does. Standard library and slack_sdk's own signer only.

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-1", base_url=slack.base_url)  # note the trailing /
        slack.fail("chat.postMessage", status=429, headers={"Retry-After": "1"})
        slack.error("chat.startStream", "unknown_method")

Web API methods answer ``{"ok": true, ...}`` (``ts`` for messages, ``user_id``/``bot_id`` for
``auth.test``); ``POST /respond/<id>`` stands in for a slash command's ``response_url``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

from slack_sdk.signature import SignatureVerifier

BOT_USER = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM = "T0000001"


@dataclass
class Call:
    method: str  # "chat.postMessage", or "respond" for a response_url
    params: dict[str, Any]
    status: int = 200

    def blocks(self) -> list[dict[str, Any]]:
        raw = self.params.get("blocks") or []
        return json.loads(raw) if isinstance(raw, str) else list(raw)


@dataclass
class _Scripted:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.scripts: dict[str, list[_Scripted]] = {}
        self.lock = threading.Lock()
        self._ts = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.ws_url = ""  # apps.connections.open answers this

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/respond/{name}"

    def __enter__(self) -> FakeSlack:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- scripting ---------------------------------------------------------------------------
    def fail(self, method: str, status: int, headers: dict[str, str] | None = None,
             times: int = 1) -> None:  # fmt: skip
        body = {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}
        self.scripts.setdefault(method, []).append(_Scripted(status, body, headers or {}, times))

    def error(self, method: str, error: str, times: int = 1_000_000) -> None:
        body = {"ok": False, "error": error}
        self.scripts.setdefault(method, []).append(_Scripted(200, body, {}, times))

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.scripts.clear()

    # -- reading -----------------------------------------------------------------------------
    def of(self, *methods: str, channel: str | None = None) -> list[Call]:
        with self.lock:
            found = [c for c in self.calls if c.method in methods]
        if channel is not None:
            found = [c for c in found if c.params.get("channel") == channel]
        return found

    def wait(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls]}")

    def answer_message(self, channel: str, timeout: float = 60.0) -> Call:
        """The last message in ``channel`` that carries the final answer (feedback buttons)."""

        def final() -> Call | None:
            for c in reversed(self.of("chat.postMessage", "chat.update", channel=channel)):
                if c.status != 200:
                    continue
                if any(b["type"] == "context_actions" for b in c.blocks()):
                    return c
                if any("Sorry" in json.dumps(b) for b in c.blocks()):
                    return c
            return None

        return self.wait(final, timeout)

    # -- answering ---------------------------------------------------------------------------
    def handle(
        self, method: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            scripted = self.scripts.get(method) or []
            if scripted:
                first = scripted[0]
                first.times -= 1
                if first.times <= 0:
                    scripted.pop(0)
                self.calls.append(Call(method, params, first.status))
                return first.status, first.body, first.headers
            self.calls.append(Call(method, params))
            ts = f"{1700000000 + next(self._ts)}.000100"
        body: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            body.update(user_id=BOT_USER, bot_id=BOT_ID, team_id=TEAM, user="newsdesk",
                        team="Test", url="https://test.slack.com/")  # fmt: skip
        elif method in ("chat.postMessage", "chat.startStream", "chat.update", "chat.stopStream"):
            body.update(channel=params.get("channel"), ts=params.get("ts") or ts)
        elif method == "chat.postEphemeral":
            body.update(message_ts=ts)
        elif method == "apps.connections.open":
            body.update(url=self.ws_url)
        return 200, body, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if "json" in (self.headers.get("Content-Type") or ""):
            params = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw))
        path = self.path.split("?", 1)[0]
        if path.startswith("/respond/"):
            with fake.lock:
                fake.calls.append(Call("respond", {**params, "url": path}))
            status, body, headers = 200, {"ok": True}, {}
        else:
            status, body, headers = fake.handle(path.removeprefix("/api/"), params)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# -- the bot's side: signed requests ---------------------------------------------------------
SECRET = "0123456789abcdef0123456789abcdef"
_event_ids = itertools.count(1)
_ts = itertools.count(1)


def new_ts() -> str:
    return f"{1600000000 + next(_ts)}.000200"


def envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy", "team_id": TEAM, "api_app_id": "A0000001", "type": "event_callback",
        "event": event, "event_id": event_id or f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }  # fmt: skip


def mention(channel: str, text: str, ts: str | None = None, thread_ts: str | None = None,
            user: str = "UHUMAN01") -> dict[str, Any]:  # fmt: skip
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}",
             "ts": ts or new_ts(), "channel": channel, "team": TEAM}  # fmt: skip
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(channel: str, text: str, *, channel_type: str = "channel", ts: str | None = None,
            thread_ts: str | None = None, user: str = "UHUMAN01",
            **extra: Any) -> dict[str, Any]:  # fmt: skip
    event = {"type": "message", "user": user, "text": text, "ts": ts or new_ts(),
             "channel": channel, "channel_type": channel_type, "team": TEAM, **extra}  # fmt: skip
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def post(url: str, body: str, *, content_type: str = "application/json",
         secret: str = SECRET, timestamp: int | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, float]:  # fmt: skip
    """Send ``body`` signed as Slack signs it; (status, body, seconds it took)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature, **(headers or {}),
    })  # fmt: skip
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.monotonic() - started


def post_event(url: str, event: dict[str, Any], **kwargs: Any) -> tuple[int, str, float]:
    return post(url, json.dumps(envelope(event, kwargs.pop("event_id", None))), **kwargs)


def post_form(url: str, payload: dict[str, Any], **kwargs: Any) -> tuple[int, str, float]:
    """A slash command (fields) or an interaction (``payload=`` JSON), form-encoded."""
    return post(url, urlencode(payload), content_type="application/x-www-form-urlencoded",
                **kwargs)  # fmt: skip
