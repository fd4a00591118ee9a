"""Error answers as the OpenAPI schema documents them (the bodies are hiveq/contract/views.py)."""

from __future__ import annotations

from typing import Any

from hiveq.contract.views import ErrorBody

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": desc}
    for code, desc in {
        401: "missing or wrong API token",
        403: "a browser on another origin tried to change state",
        404: "unknown id",
        409: "the record's state does not allow this, or one of hiveq's keys holds another "
        "application's Redis type (code wrong_type: the message names the key; `hiveq repair`)",
        413: "request body too large",
        415: "body is not JSON",
        421: "the Host header names a host this API does not answer to",
        422: "invalid input: the body names the field and the rule",
        503: "Redis is unreachable",
        507: "Redis is full (maxmemory reached, policy noeviction): nothing was written",
    }.items()
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: ERRORS[c] for c in codes}
