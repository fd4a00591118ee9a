"""What counts as JSON on hiveq's wire: RFC 8259 and nothing more, so that every value a client
sends can be stored, encoded as UTF-8 and read back by a worker in any language.

Refused, each with a 422 naming the rule: `NaN`, `Infinity` and numbers too large for a double
(Python's json would accept them, no other parser does); nesting deeper than `MAX_JSON_DEPTH`; a
lone UTF-16 surrogate such as `"\\ud800"` (valid JSON escape, but not Unicode text: encoding it
as UTF-8 fails). The checks after parsing run only when a cheap scan of the raw text says they
can matter, so an ordinary body pays one parse.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hiveq.contract.errors import ValidationFailed
from hiveq.contract.limits import MAX_JSON_DEPTH

DEPTH_RULE = f"nests deeper than {MAX_JSON_DEPTH} levels of objects and arrays; send a flatter document"
NUMBER_RULE = (
    "contains {!r}, which is not a JSON number (RFC 8259 has no NaN or Infinity, and a number must "
    "fit a double); send a finite number or null"
)
SURROGATE_RULE = (
    "contains a lone UTF-16 surrogate (an escape in \\ud800-\\udfff that is not part of a pair), "
    "which is not Unicode text; send well-formed text"
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(raw: bytes | str, field: str = "body") -> Any:
    """Parse a client's JSON text strictly (see the module doc); errors name `field`."""

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValidationFailed(field, NUMBER_RULE.format(text[:40]))
        return value

    try:
        value = json.loads(raw, parse_constant=number, parse_float=number)
    except RecursionError:
        raise ValidationFailed(field, DEPTH_RULE) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(field, f"is not valid JSON ({exc}); send a JSON object") from None
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH:
        check_depth(value, field)
    if _SURROGATE_ESCAPE.search(data):
        check_text(value, field)
    return value


def check_depth(value: Any, field: str) -> None:
    """Refuse values nested deeper than MAX_JSON_DEPTH (the root is level 1; an iterative walk
    over containers only, so it cannot overflow the stack itself)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth >= MAX_JSON_DEPTH:
                    raise ValidationFailed(field, DEPTH_RULE)
                stack.append((child, depth + 1))


def check_text(value: Any, field: str) -> None:
    """Refuse strings (keys included) that cannot be encoded as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed(field, SURROGATE_RULE) from None


def encodable(text: str, field: str) -> str:
    """`text` if it can be encoded as UTF-8 (what Redis stores), else a ValidationFailed."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationFailed(field, SURROGATE_RULE) from None
    return text
