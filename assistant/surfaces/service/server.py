"""Running the service: refuse an open bind without a token, then uvicorn.

One process (the default) serves every request from one :class:`~assistant.desk.Desk`;
``--workers N`` starts N uvicorn worker processes, each with its own desk (and its own
per-client concurrency count), built by :func:`app_from_env` from the environment.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings

LOOPBACK_NAMES = ("localhost", "ip6-localhost")
_LOG_LEVEL = "_NEWSDESK_SERVE_LOG_LEVEL"  # the CLI's level, handed to --workers processes
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # as the CLI's own


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str) -> None:
    """Only loopback without a token: anyone who can reach the port could ask otherwise."""
    if settings.api_token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without a token: set NEWSDESK_API_TOKEN (clients "
            "then send 'Authorization: Bearer <token>'), or serve on 127.0.0.1"
        )


def app_from_env() -> FastAPI:
    """The app of one ``--workers`` process (settings from the environment)."""
    from assistant.surfaces.service.app import create_app

    level = int(os.environ.get(_LOG_LEVEL, logging.WARNING))
    if not logging.getLogger().handlers:  # a fresh worker process: log as the parent does
        logging.basicConfig(level=level, format=LOG_FORMAT)
    _access_log(level)
    return create_app(load_settings())


def _access_log(level: int) -> None:
    """The access log is info: shown by default for the service (and more with -v)."""
    logging.getLogger("assistant.surfaces.service").setLevel(min(logging.INFO, level))


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int = 1,
    say: Callable[[str], None] = print,
) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    check_bind(settings, host)
    level = logging.getLogger().getEffectiveLevel()
    _access_log(level)
    auth = "bearer token required" if settings.api_token else "no token (loopback only)"
    where = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    say(f"newsdesk serve: {where} · collection {settings.collection} · {auth} · "
        f"{workers} worker{'s' if workers != 1 else ''}; Ctrl-C stops")  # fmt: skip
    common = {"host": host, "port": port, "log_config": None, "access_log": False,
              "timeout_graceful_shutdown": 5}  # fmt: skip
    if workers > 1:
        os.environ["NEWSDESK_COLLECTION"] = settings.collection  # the workers read the env
        os.environ[_LOG_LEVEL] = str(level)
        if settings.extractive:
            os.environ["NEWSDESK_EXTRACTIVE"] = "true"
        uvicorn.run("assistant.surfaces.service.server:app_from_env", factory=True,
                    workers=workers, **common)  # type: ignore[arg-type]  # fmt: skip
        return
    from assistant.surfaces.service.app import create_app

    uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
