"""JSON in and out, with size bounds. No pickle anywhere."""

from __future__ import annotations

import json
from typing import Any

from hiveq.errors import PayloadTooLarge, ValidationFailed

# One encoder for the process: json.dumps would build a new one per call, which costs more than
# encoding a small job input.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def dumps_bounded(value: Any, field: str, limit: int) -> str:
    """Serialise `value` for Redis, refusing non-JSON values and payloads over `limit` bytes."""
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(field, f"must be JSON-serialisable ({exc})") from None
    size = len(text) if text.isascii() else len(text.encode())
    if size > limit:
        raise PayloadTooLarge(field, size, limit)
    return text


def loads(text: str | bytes | None) -> Any:
    if text is None or text == "":
        return None
    return json.loads(text)
