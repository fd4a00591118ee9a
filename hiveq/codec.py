"""JSON in and out, with size bounds. No pickle anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hiveq.errors import PayloadTooLarge, ValidationFailed

# One encoder for the process: json.dumps would build a new one per call, which costs more than
# encoding a small job input.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def dumps_bounded(value: Any, field: str | Callable[[], str], limit: int) -> str:
    """Serialise `value` for Redis, refusing non-JSON values and payloads over `limit` bytes.

    `field` names the value in errors; hot paths pass a function, called only on an error."""
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(_name(field), f"must be JSON-serialisable ({exc})") from None
    if len(text) > limit or not text.isascii():  # a UTF-8 byte count only when it can matter
        size = len(text.encode())
        if size > limit:
            raise PayloadTooLarge(_name(field), size, limit)
    return text


def _name(field: str | Callable[[], str]) -> str:
    return field if isinstance(field, str) else field()


def loads(text: str | bytes | None) -> Any:
    if text is None or text == "":
        return None
    return json.loads(text)
