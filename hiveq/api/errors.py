"""Errors as JSON: every failure becomes `{"error": {"code", "message", "field"}}` with the right
status, never a traceback. Also the request-size guard (413) as plain ASGI middleware."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hiveq.contract.errors import (
    HiveqError,
    PayloadTooLarge,
    RedisFull,
    RedisUnavailable,
    ValidationFailed,
    code_for_status,
)
from hiveq.contract.protocol import PATTERN_RULES

log = logging.getLogger("hiveq.api")


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def field_path(loc: Sequence[Any]) -> str:
    """('body', 'subtasks', 0, 'agent') -> 'subtasks[0].agent'."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header") and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def from_pydantic(errors: Sequence[Any]) -> ValidationFailed:
    """The first pydantic error as a ValidationFailed naming the field and the rule."""
    first = errors[0]
    rule = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        rule = "is required"
    elif first.get("type") == "extra_forbidden":
        rule = "is not a known field; remove it (see /docs for the schema)"
    elif first.get("type") == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(str(first.get("ctx", {}).get("pattern")), rule)
    return ValidationFailed(field_path(first.get("loc", ())), rule)


async def hiveq_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HiveqError)
    if isinstance(exc, RedisFull):
        log.warning("%s", exc)  # an answer about Redis's state, not a fault of this process
    elif exc.http_status >= 500 and not isinstance(exc, RedisUnavailable):
        log.error("%s: %s", type(exc).__name__, exc)
    return error_response(exc.http_status, exc.code, str(exc), exc.field)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    err = from_pydantic(exc.errors())
    return error_response(err.http_status, err.code, str(err), err.field)


def allowed_methods(request: Request) -> str:
    """Every method the path supports (Starlette's 405 names only the first matching route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = code_for_status(exc.status_code)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return error_response(exc.status_code, code, str(exc.detail), None, headers or None)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(
        HiveqError.http_status, HiveqError.code, f"internal error ({type(exc).__name__}); see the server log"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(HiveqError, hiveq_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413: by Content-Length up front, and by
    counting while streaming (a chunked body has no Content-Length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, send, int(value))
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge("request body", seen, self.limit)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge:
            if not started:
                await self._refuse(scope, send, seen)

    async def _refuse(self, scope: Scope, send: Send, size: int) -> None:
        await send_error(send, PayloadTooLarge("request body", size, self.limit), field="body")


async def send_error(send: Send, exc: HiveqError, field: str | None = None) -> None:
    """Answer with the JSON error body from plain ASGI middleware (before any route ran)."""
    error = {"code": exc.code, "message": str(exc), "field": field or exc.field}
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
