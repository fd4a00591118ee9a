"""JSON in and out, with size bounds. No pickle anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hiveq.contract.errors import PayloadTooLarge, ValidationFailed
from hiveq.contract.jsonrules import SURROGATE_RULE

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _not_json(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# The stdlib's C encoder, made once: JSONEncoder.encode builds a new one on every call, which
# costs more than encoding a small job input. Same output and errors as _ENCODER (NaN and
# non-JSON types refused), except that a circular structure ends in RecursionError.
_C_MAKE: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    _C_MAKE(None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _C_MAKE is not None
    else None
)


def dumps(value: Any) -> str:
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def dumps_bounded(value: Any, field: str | Callable[[], str], limit: int) -> str:
    """Serialise `value` for Redis, refusing non-JSON values and payloads over `limit` bytes.

    `field` names the value in errors; hot paths pass a function, called only on an error."""
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(_name(field), f"must be JSON-serialisable ({exc})") from None
    except RecursionError:
        raise ValidationFailed(
            _name(field), "must be JSON-serialisable (circular or too deeply nested)"
        ) from None
    if len(text) > limit or not text.isascii():  # a UTF-8 byte count only when it can matter
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            raise ValidationFailed(_name(field), SURROGATE_RULE) from None
        if size > limit:
            raise PayloadTooLarge(_name(field), size, limit)
    return text


def _name(field: str | Callable[[], str]) -> str:
    return field if isinstance(field, str) else field()
