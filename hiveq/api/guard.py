"""The browser guard: a web page on another origin cannot drive a loopback API (plain ASGI).

- **Host.** The Host header must name a host this API answers to: the loopback names, the bound
  host and `HIVEQ_ALLOWED_HOSTS`. A DNS-rebinding page (evil.example made to
  resolve to 127.0.0.1) sends `Host: evil.example` and gets 421, so it cannot read answers. A
  wildcard bind (0.0.0.0, which needs a token) answers to any host unless the list is set.
- **Origin.** A request that changes state (POST, PUT, PATCH, DELETE) sent by a browser must come
  from this API's own origin or from an allowed host; any other origin gets 403, and so does
  `Sec-Fetch-Site: cross-site` without an Origin. curl, the SDK and the CLI send neither header.

Together with `POST /tasks` refusing form bodies from browsers (hiveq/api/tasks.py), a page on
another origin can neither create nor cancel work through a token-less loopback API.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from hiveq.api.errors import send_error
from hiveq.contract.errors import HiveqError, HostNotAllowed, OriginNotAllowed
from hiveq.settings import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
ANY_HOST = "*"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(authority: str) -> str:
    """The host of a Host header or URL authority, lower case, without port, brackets or final dot:
    'LocalHost:8001' -> 'localhost', '[::1]:8001' -> '::1'."""
    a = authority.strip().lower()
    if a.startswith("["):
        a = a[1 : a.find("]")] if "]" in a else a[1:]
    elif a.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        a = a.partition(":")[0]
    return a.rstrip(".")


def allowed_hosts(settings: Settings) -> tuple[str, ...] | None:
    """The host names the API answers to: the loopback names (no DNS-rebinding page can send
    those), the bound host and HIVEQ_ALLOWED_HOSTS. None: any host ('*' in the list, or a
    wildcard bind, which needs a token, with no list)."""
    listed = tuple(host_name(h) for h in settings.api.allowed_hosts)
    bound = settings.api.host.strip().strip("[]").lower()  # a bind address: no port
    if ANY_HOST in listed or (bound in WILDCARD_BINDS and not listed):
        return None
    names = (*LOOPBACK_NAMES, *([] if bound in WILDCARD_BINDS else [bound]), *listed)
    return tuple(dict.fromkeys(names))


def check_origin(
    origin: str | None, fetch_site: str | None, host: str, allowed: Sequence[str] | None
) -> None:
    """Refuse a browser's state-changing request from another origin (see the module doc)."""
    if origin is None:
        if fetch_site == "cross-site":
            raise OriginNotAllowed("(cross-site, no Origin header)")
        return
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc:
        if parts.netloc.lower() == host.lower():
            return  # same origin: the dashboard, or /docs
        if allowed is not None and host_name(parts.netloc) in allowed:
            return
    raise OriginNotAllowed(origin)


class BrowserGuard:
    """Host allow-list on every request, Origin check on state-changing ones."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = allowed_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name, value)
        host = headers.get(b"host", b"").decode("latin-1")
        try:
            if self.allowed is not None and host_name(host) not in self.allowed:
                raise HostNotAllowed(host or "(none)", self.allowed)
            if scope["method"] in STATE_CHANGING:
                origin = headers.get(b"origin")
                site = headers.get(b"sec-fetch-site")
                check_origin(
                    origin.decode("latin-1") if origin is not None else None,
                    site.decode("latin-1").lower() if site is not None else None,
                    host,
                    self.allowed,
                )
        except HiveqError as exc:
            await send_error(send, exc)
            return
        await self.app(scope, receive, send)
