"""Every script's contract header tells the truth about the keys it touches, read from the source
sent to Redis (the script with the prelude parts it uses): the fixed keys it uses are exactly its
KEYS, and the derived keys it reaches are exactly the ones its header names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hiveq.queue.assemble import defined, key_rows, lua, names_used, statements
from hiveq.queue.keys import FIXED_KEY_TYPES
from hiveq.queue.scripts import SCRIPT_NAMES, script_keys, script_source

# The prelude helper that builds each kind of derived key -> how headers name that key.
DERIVED = {
    "jkey": "job:<id>",
    "lkey": "job:<id>:log",
    "tbkey": "job:<id>:tracebacks",
    "stkey": "job:<id>:steps",
    "sigkey": "job:<id>:signals",
    "outkey": "job:<id>:output",
    "tkey": "task:<id>",
    "qkey": "q:<agent>",
    "wakekey": "wake:<agent>",
    "wkey": "worker:<id>",
    "inboxkey": "inbox:<id>",
    "ikey": "idem:<key>",
    "anykey": "<suffix>",  # set_aside only: the foreign value `hiveq repair` moves ...
    "asidekey": "aside:<suffix>:<ms>",  # ... and where it goes
    "limkey": "lim:c:<key>",
    "lholdkey": "lim:h:<key>",
    "lwaitkey": "lim:w:<key>",
    "lpatkey": "lim:k:<pattern>",
    "skey": "sched:<name>",
}
DERIVED_NAME = re.compile("|".join(re.escape(n) for n in sorted(DERIVED.values(), key=len, reverse=True)))
SECTIONS = ("KEYS", "ARGV", "Derived keys", "Returns", "Events")
NOT_CODE = re.compile(r"--\[(=*)\[.*?\]\1\]|--[^\n]*|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", re.S)


def code(name: str) -> str:
    """The Lua sent for `name`, without comments and string literals."""
    return NOT_CODE.sub(" ", script_source(name))


def header(name: str) -> str:
    m = re.match(r"--\[(=*)\[(.*?)\]\1\]", lua(name), re.S)
    assert m, f"{name}.lua has no contract header"
    return m.group(2)


def section(text: str, title: str) -> str:
    """One section of a header: from the line starting with `title` to the next section."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(SECTIONS)), len(lines))
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_a_script_header_has_purpose_keys_argv_derived_keys_returns_and_events(name: str) -> None:
    text = header(name)
    assert text.startswith(f" {name}: "), "the header opens with the script's name and purpose"
    for title in SECTIONS:
        assert any(line.startswith(title) for line in text.splitlines()), f"{name}: no {title} section"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_the_fixed_keys_a_script_uses_are_exactly_the_keys_its_header_declares(name: str) -> None:
    used = set(re.findall(r"\bK\.(\w+)", code(name)))
    assert used <= set(FIXED_KEY_TYPES), used - set(FIXED_KEY_TYPES)
    assert sorted(used) == sorted(script_keys(name)), f"{name}: uses {sorted(used)}"
    assert not re.search(r"\bK\[|KEYS\[", NOT_CODE.sub(" ", lua(name))), "fixed keys by name only"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_the_derived_keys_a_script_reaches_are_exactly_the_ones_its_header_names(name: str) -> None:
    calls = {k for h, k in DERIVED.items() if re.search(rf"(?<!function )\b{h}\(", code(name))}
    named = set(DERIVED_NAME.findall(section(header(name), "Derived keys")))
    assert named == calls, f"{name}: header names {sorted(named)}, code reaches {sorted(calls)}"


def test_derived_keys_are_built_only_by_the_prelude_key_helpers() -> None:
    for name in SCRIPT_NAMES:
        assert "P .." not in NOT_CODE.sub(" ", lua(name)), f"{name}.lua builds a key itself"
    builders = set()
    for part in statements(lua("_lib")):
        if "P .." in NOT_CODE.sub(" ", part) and "DECLARED" not in part:  # the KEYS check compares
            builders |= defined(part)
    assert builders == set(DERIVED)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_a_script_is_sent_with_every_prelude_name_it_uses_and_without_the_others(name: str) -> None:
    prelude: set[str] = set().union(*(defined(p) for p in statements(lua("_lib"))))
    sent = script_source(name)
    kept: set[str] = set().union(*(defined(p) for p in statements(sent)))
    assert names_used(sent) & prelude <= kept  # nothing it calls is missing
    moves_jobs_back = ("complete", "release", "promote_due", "reap_expired", "retry_dead", "recover")
    ends_waits = ("fail", "quarantine", "cancel", "signal")  # resume a durable agent: docs/durable.md
    assert ("to_waiting" in kept) == (name in moves_jobs_back + ends_waits)  # and the rest is left out


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_each_key_checked_later_is_checked_by_the_script_that_declares_it(name: str) -> None:
    later = {key for key, flag in key_rows(name) if flag}
    body = NOT_CODE.sub(" ", lua(name))
    checked = set(re.findall(r"check_later\('(\w+)'\)", lua(name)))
    assert checked <= later, f"{name} checks later {sorted(checked - later)}, not marked * in its header"
    assert later <= checked or "check_later_all()" in body, f"{name} never checks {sorted(later - checked)}"


def test_the_protocol_doc_lists_each_script_with_the_keys_of_its_header() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    table = doc[doc.index("| script | KEYS |") :].split("\n\n")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]*) \|", table, re.M))
    documented = {
        name: tuple(k.strip() for k in keys.split(",") if k.strip() not in ("", "–"))
        for name, keys in rows.items()
    }
    assert documented == {
        name: tuple(key + ("*" if later else "") for key, later in key_rows(name)) for name in SCRIPT_NAMES
    }
