"""Request dependencies: the app's brokers (opened by the lifespan, kept on `app.state`) and auth."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from hiveq.archive.read import Archive
from hiveq.queue.broker import Broker


async def get_broker(request: Request) -> Broker:
    """The app's broker; claims the namespace on first use if Redis was down at startup."""
    state = request.app.state
    b: Broker = state.broker
    if not state.namespace_claimed:
        await b.claim_namespace()
        await state.epoch.remember()
        state.namespace_claimed = True
    return b


async def get_archive(request: Request) -> Archive | None:
    """The archive the reads fall through to (None without HIVEQ_ARCHIVE_URL)."""
    archive: Archive | None = request.app.state.archive
    return archive


async def get_stream_broker(request: Request) -> Broker:
    """A broker whose socket timeout allows blocking XREADs (SSE)."""
    await get_broker(request)
    b: Broker = request.app.state.stream_broker
    return b


def who_asked(request: Request, b: Broker) -> str:
    """For custody records: which client (its address) asked, through which API process."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "an unknown client"
    return f"{client} through the API ({b.identity})"


def token_ok(tokens: tuple[str, ...], presented: str | None) -> bool:
    """Constant-time comparison against every configured token."""
    if not presented:
        return False
    ok = False
    for t in tokens:
        ok |= hmac.compare_digest(t.encode(), presented.encode())
    return ok


def _presented(request: Request, allow_query: bool) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") if allow_query else None


def _check(request: Request, allow_query: bool) -> None:
    tokens: tuple[str, ...] = request.app.state.settings.api.api_tokens
    if tokens and not token_ok(tokens, _presented(request, allow_query)):
        raise HTTPException(
            401,
            "missing or wrong API token: send 'Authorization: Bearer <token>' with one of HIVEQ_API_TOKENS"
            + (" (or ?token=)" if allow_query else ""),
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_token(request: Request) -> None:
    _check(request, allow_query=False)


async def require_token_or_query(request: Request) -> None:
    """For SSE: EventSource in a browser cannot set headers, so `?token=` is accepted too."""
    _check(request, allow_query=True)


async def require_docs_token(request: Request) -> None:
    """For /docs, /redoc and /openapi.json: public with HIVEQ_PUBLIC_DOCS=1, else like SSE (a
    browser opening the page cannot send a header, so `?token=` is accepted)."""
    if not request.app.state.settings.api.public_docs:
        _check(request, allow_query=True)
