"""The two transports: HTTP (``/slack/events``, ``/healthz``) and Socket Mode.

HTTP mode serves Slack's events, slash commands and interactions on one threaded HTTP server;
Bolt checks each request's signature and timestamp (a bad or stale one gets 401 and does
nothing). Socket Mode (``SLACK_APP_TOKEN``) needs no public URL: slack_sdk opens the websocket.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from slack_bolt import App, BoltRequest

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack's payloads are far smaller


class _Handler(BaseHTTPRequestHandler):
    server: SlackHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "newsdesk-slack"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: str | bytes, headers: dict[str, Any] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        sent_type = False
        for name, values in (headers or {}).items():
            if name.lower() == "content-length":
                continue
            sent_type |= name.lower() == "content-type"
            for value in values if isinstance(values, list | tuple) else [values]:
                self.send_header(name, str(value))
        if not sent_type:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/healthz":
            body = json.dumps({"ok": True, "bot_user_id": self.server.bot_user_id})
            self._send(200, body, {"Content-Type": "application/json"})
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != EVENTS_PATH:
            self._send(404, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, "payload too large")
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        headers: dict[str, str | list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)  # type: ignore[union-attr]
        request = BoltRequest(body=body, query=parts.query, headers=headers)
        response = self.server.app.dispatch(request)
        self._send(response.status, response.body or "", response.headers)


class SlackHTTPServer(ThreadingHTTPServer):
    """One thread per request; ``port=0`` picks a free port (see ``.port``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App, host: str, port: int, bot_user_id: str = "") -> None:
        self.app = app
        self.bot_user_id = bot_user_id
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="newsdesk-slack-http",
                                  daemon=True)  # fmt: skip
        thread.start()
        return thread


def socket_mode_handler(app: App, app_token: str) -> Any:
    """Bolt's Socket Mode adapter, talking to the same Web API base URL as the bot."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token, web_client=app.client)


def serve(
    settings: Any, host: str, port: int, say: Callable[[str], None] = lambda line: None
) -> None:
    """``newsdesk slack``: build the bot, then serve until Ctrl-C or SIGTERM (Socket Mode when
    ``SLACK_APP_TOKEN`` is set, else HTTP). ``say`` gets the one line saying where it runs."""
    from assistant.surfaces.slack.app import create_bot

    bot = create_bot(settings)
    try:
        if settings.slack_app_token is not None:
            handler = socket_mode_handler(bot.app, settings.slack_app_token.get_secret_value())
            say(f"newsdesk slack: Socket Mode as bot user {bot.bot_user_id}; Ctrl-C stops")
            handler.start()
            return
        server = SlackHTTPServer(bot.app, host, port, bot.bot_user_id)

        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        say(
            f"newsdesk slack: bot user {bot.bot_user_id}, listening on "
            f"http://{host}:{server.port}{EVENTS_PATH} (and /healthz); Ctrl-C stops"
        )
        try:
            server.serve_forever()
        finally:
            server.server_close()
    finally:
        bot.close()
