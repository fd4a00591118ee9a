"""Run the API under uvicorn; refuse to listen beyond loopback without a token (safe by default),
and redact every log line (the SSE `?token=` in access logs, a password in a Redis URL)."""

from __future__ import annotations

import copy
import ipaddress
import os
import sys
from typing import Any

import uvicorn
import uvicorn.config

from hiveq.api.app import create_app
from hiveq.settings import Settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str, insecure: bool) -> str | None:
    """The refusal message, or None when binding is allowed."""
    if is_loopback(host) or settings.api.api_tokens or insecure:
        return None
    return (
        f"refusing to listen on {host} without an API token: anyone who can reach it could submit and "
        "cancel work. Set HIVEQ_API_TOKENS=<secret> (clients send 'Authorization: Bearer <secret>'), "
        "bind to 127.0.0.1, or pass --insecure if this network is trusted"
    )


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging with a `RedactFilter` on its handlers (uvicorn.access writes each request
    line, query string included), and hiveq's own loggers on the same, redacted, handler."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {
        "redact": {"()": "hiveq.contract.redact.RedactFilter", "secrets": list(settings.secrets)}
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["loggers"]["hiveq"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    insecure: bool,
    reload: bool = False,
    access_log: bool = True,
) -> None:
    refusal = check_bind(settings, host, insecure)
    if refusal:
        print(f"hiveq: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    settings = settings.with_(host=host)  # the Host allow-list includes the bound host
    logging = log_config(settings)
    if reload:  # the reloader re-imports the app, so settings travel through the environment
        os.environ.setdefault("REDIS_URL", settings.redis_url)
        os.environ.setdefault("HIVEQ_APP", settings.app)
        os.environ.setdefault("HIVEQ_ENV", settings.env)
        os.environ["HIVEQ_HOST"] = host
        uvicorn.run(
            "hiveq.api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            reload=True,
            access_log=access_log,
            log_config=logging,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        log_config=logging,
    )
