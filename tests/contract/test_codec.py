"""codec: JSON out with the same rules everywhere (no NaN, no foreign types), sizes in bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hiveq.contract.codec import dumps, dumps_bounded
from hiveq.contract.errors import PayloadTooLarge, ValidationFailed


@pytest.mark.parametrize(
    "value",
    [{"i": 1}, [1, 2.5, "x", None, True], 'quote " and ü', 3, None, {"a": {"b": [{"c": "é"}]}}, {1: "k"}],
)
def test_dumps_writes_compact_utf8_json_like_the_stdlib(value: Any) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (float("nan"), "Out of range float"),
        ({"x": object()}, "object is not JSON serializable"),
        ({(1, 2): 1}, "keys must be"),
        ({"s": {1, 2}}, "set is not JSON serializable"),
    ],
)
def test_values_that_are_not_json_are_refused_naming_the_field(value: Any, why: str) -> None:
    with pytest.raises(ValidationFailed, match=rf"subtasks\[3\].input: must be JSON-serialisable .*{why}"):
        dumps_bounded(value, lambda: "subtasks[3].input", 1000)


def test_a_circular_value_is_refused_not_a_crash() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValidationFailed, match="circular or too deeply nested"):
        dumps_bounded(loop, "input", 1000)
    assert dumps({"after": "still works"}) == '{"after":"still works"}'


def test_the_size_limit_counts_utf8_bytes() -> None:
    assert dumps_bounded("é" * 4, "input", 10) == '"éééé"'  # 10 bytes: at the limit
    with pytest.raises(PayloadTooLarge, match="input"):
        dumps_bounded("é" * 5, "input", 10)  # 12 bytes, though only 7 characters
