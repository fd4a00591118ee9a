"""Builds the source of each script: its KEYS declaration, the parts of the prelude it uses, its body.

The header's `KEYS  1 leases …` list is the one place a script's fixed keys are written down;
it decides the keys the broker passes (in that order) and the prelude's type checks, with each
key's Redis type from `keys.FIXED_KEY_TYPES`.

Only the prelude (`lua/_lib.lua`) definitions that the script reaches are sent with it: a Lua
script runs all of its top-level statements on every call, and defining the whole prelude's
helpers costs several µs of Redis CPU per call, more than most scripts' own work. A top-level
statement of the prelude that defines names is kept when one of its names is used by the
script or by another kept statement; the others (comments, the key checks) are always kept.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from hiveq.queue.keys import FIXED_KEY_TYPES

_HEADER = re.compile(r"--\[(=*)\[(.*?)\]\1\]", re.S)
# A header's FLAGS line says how the script meets a full Redis (maxmemory reached, noeviction):
# - `FLAGS allow-oom`: sent with `#!lua flags=allow-oom`, Redis runs it anyway (the scripts that
#   land or hand back work already taken: a worker finishes what it holds);
# - `FLAGS none`: sent with `#!lua` (no flags), Redis refuses the whole call before it runs (the
#   scripts that accept new work: a refused task was surely not written).
# Without a FLAGS line (a plain EVAL script) Redis refuses only a first write that grows memory;
# once a script wrote, it runs to its end. Either way a refused call wrote nothing.
_FLAGS = re.compile(r"^FLAGS\s+(allow-oom|none)\b", re.M)
_KEY_ROW = re.compile(r"^(?:KEYS)?\s+(\d+)\s+([a-z_]+)(\*?)(?:\s|$)")
# Comments and string literals, which never use a name.
_NOT_CODE = re.compile(r"--\[(=*)\[.*?\]\1\]|--[^\n]*|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", re.S)
_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")
_DEFINES = re.compile(r"local\s+function\s+(\w+)|local\s+([\w\s,]+?)\s*(?:=|$)")


def lua(name: str) -> str:
    return (resources.files("hiveq.queue") / "lua" / f"{name}.lua").read_text()


@cache
def key_rows(name: str) -> tuple[tuple[str, bool], ...]:
    """The fixed keys a script's header declares, in KEYS order: (suffix, checked later), where
    "checked later" (a `*` after the name) means only the calls that write it check it, by
    `check_later(name)`, still before their first write."""
    header = _HEADER.match(lua(name))
    if header is None:
        raise ValueError(f"{name}.lua does not start with its contract header (--[[ … ]])")
    lines = header.group(2).splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("KEYS")), None)
    if start is None:
        raise ValueError(f"{name}.lua's header has no KEYS line (write `KEYS  (none)` when it has none)")
    rows: list[tuple[str, bool]] = []
    for n, line in enumerate(lines[start:]):
        if n and line[:1].strip():
            break  # the next section (ARGV …) starts at the left margin
        row = _KEY_ROW.match(line)
        if row is None:
            continue  # a wrapped description
        position, suffix = int(row.group(1)), row.group(2)
        if position != len(rows) + 1 or suffix not in FIXED_KEY_TYPES:
            raise ValueError(f"{name}.lua's header: KEYS entry {line.strip()!r} is out of order or unknown")
        rows.append((suffix, row.group(3) == "*"))
    return tuple(rows)


def script_keys(name: str) -> tuple[str, ...]:
    """The fixed keys (suffixes, in KEYS order) that a script's header declares."""
    return tuple(suffix for suffix, _ in key_rows(name))


def names_used(code: str) -> set[str]:
    return set(_NAME.findall(_NOT_CODE.sub(" ", code)))


def statements(source: str) -> list[str]:
    """The top-level statements of a Lua file, each with the comment lines just above it."""
    out: list[str] = []
    pending = ""  # comment lines waiting for their statement
    closing = ""  # the end of the block comment we are in, if any
    for line in source.splitlines(keepends=True):
        opening = re.match(r"--\[(=*)\[", line)
        if closing or opening:
            pending += line
            if opening and not closing:
                closing = f"]{opening.group(1)}]"
                line = line[opening.end() :]
            if closing in line:
                closing = ""
        elif line.startswith("--") or not line.strip():
            pending += line
        elif line[:1].strip() and not line.startswith(("end", "}", ")")):
            out.append(pending + line)
            pending = ""
        elif out:
            out[-1] += pending + line  # a continuation line of the statement above
            pending = ""
        else:
            pending += line
    return [*out, pending] if pending else out


def defined(statement: str) -> set[str]:
    m = _DEFINES.match(_NOT_CODE.sub(" ", statement).strip())
    if m is None:
        return set()
    return {m.group(1)} if m.group(1) else {n.strip() for n in m.group(2).split(",")}


def prelude_for(body: str) -> str:
    """The prelude statements `body` reaches (directly or through each other), in order."""
    parts = statements(lua("_lib"))
    defs = [defined(p) for p in parts]
    keep = [not d for d in defs]
    needed = names_used(body).union(*(names_used(p) for p, k in zip(parts, keep, strict=True) if k))
    changed = True
    while changed:
        changed = False
        for i, part in enumerate(parts):
            if not keep[i] and defs[i] & needed:
                keep[i] = changed = True
                needed |= names_used(part)
    return "".join(p for p, k in zip(parts, keep, strict=True) if k)


def script_flags(name: str) -> tuple[str, ...]:
    """The Redis script flags its header's FLAGS line asks for (none: a plain EVAL script)."""
    header = _HEADER.match(lua(name))
    return tuple(_FLAGS.findall(header.group(2))) if header else ()


@cache
def script_source(name: str) -> str:
    """What is sent to Redis for `name`: the shebang its FLAGS ask for, the KEYS declaration, the
    prelude it uses, the script."""
    declared = ", ".join(
        f"'{k}', '{FIXED_KEY_TYPES[k]}', {str(later).lower()}" for k, later in key_rows(name)
    )
    head = f"local SCRIPT, DECLARED = '{name}', {{ {declared} }} -- from the header's KEYS\n"
    body = lua(name)
    flags = [f for f in script_flags(name) if f != "none"]
    shebang = (f"#!lua flags={','.join(flags)}\n" if flags else "#!lua\n") if script_flags(name) else ""
    return shebang + head + prelude_for(body) + "\n" + body
