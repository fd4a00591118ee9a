"""Run the API under uvicorn; refuse to listen beyond loopback without a token (safe by default)."""

from __future__ import annotations

import ipaddress
import os
import sys

import uvicorn

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
    if reload:  # the reloader re-imports the app, so settings travel through the environment
        os.environ.setdefault("REDIS_URL", settings.redis_url)
        os.environ.setdefault("HIVEQ_APP", settings.app)
        os.environ.setdefault("HIVEQ_ENV", settings.env)
        uvicorn.run(
            "hiveq.api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            reload=True,
            access_log=access_log,
        )
        return
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)
