"""repair: find the foreign values on hiveq's key names and set them aside (`hiveq repair`).

A value of another Redis type on one of our keys (another application's `LPUSH` onto a queue
key, a `SET` on `leases`) makes every script that touches that key refuse (WRONGTYPE, named by
the broker). Workers pause what needs the key and the API answers 409 naming it; this moves the
value under `<prefix>aside:<suffix>:<ms>` in one script call each (lua/set_aside.lua), so the
scripts work again and nothing is deleted: the operator can read it, give it back to its owner
or delete it. The walk uses SCAN, never KEYS.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiveq.contract.errors import Code
from hiveq.queue.broker import Broker, expected_type

SCAN_COUNT = 1000


@dataclass(frozen=True)
class ForeignValue:
    key: str
    found: str  # the Redis type found there
    expected: str  # the type hiveq keeps there


@dataclass(frozen=True)
class SetAside:
    key: str
    found: str
    moved_to: str  # '' when nothing was moved (the key changed meanwhile)


async def find_foreign(b: Broker) -> list[ForeignValue]:
    """Every key of the namespace (and every fixed key) holding another type than hiveq's."""
    names = list(b.keys.fixed_keys())
    async for raw in b.redis.scan_iter(match=b.keys.prefix + "*", count=SCAN_COUNT):
        names.append(str(raw))
    names = list(dict.fromkeys(names))
    out: list[ForeignValue] = []
    for at in range(0, len(names), SCAN_COUNT):
        part = names[at : at + SCAN_COUNT]
        pipe = b.redis.pipeline(transaction=False)
        for key in part:
            pipe.type(key)
        for key, found in zip(part, await b.guard(pipe.execute()), strict=True):
            want = expected_type(b.keys, key)
            if want and str(found) not in ("none", want):
                out.append(ForeignValue(key, str(found), want))
    return out


async def set_aside(b: Broker, value: ForeignValue) -> SetAside:
    """Move one foreign value aside (one atomic script call); '' moved_to if it was gone."""
    suffix = value.key.removeprefix(b.keys.prefix)
    for _ in range(3):  # DUPLICATE: another repair took the same millisecond's name
        code, found, dest = await b.run("set_aside", [suffix, value.expected])
        if int(code) != Code.DUPLICATE:
            return SetAside(value.key, str(found), str(dest) if int(code) == Code.OK else "")
    return SetAside(value.key, str(found), "")
