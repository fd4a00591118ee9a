"""Foreign consumers: clients of this Redis that pop, block on or touch keys but are not hiveq.

hiveq names every connection `hiveq:<app>:<env>:<role>:<id>` and records each worker's client
address in its registration, so `CLIENT LIST` tells ours from theirs. A short MONITOR sample
(see monitor.py) shows which addresses touch our keys or a generic queue name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rex

from hiveq.diagnose.monitor import Sample
from hiveq.diagnose.report import Check, fail, ok, warn
from hiveq.queue.broker import Broker
from hiveq.queue.keys import Keyspace

NAME = "foreign consumers"
# Commands that take data out of Redis: a client whose last command is one of these is a consumer.
CONSUMER_CMDS = frozenset(
    {
        "brpop",
        "blpop",
        "brpoplpush",
        "blmove",
        "blmpop",
        "bzpopmin",
        "bzpopmax",
        "bzmpop",
        "lpop",
        "rpop",
        "rpoplpush",
        "lmove",
        "lmpop",
        "zpopmin",
        "zpopmax",
        "zmpop",
        "spop",
        "xread",
        "xreadgroup",
        "xautoclaim",
        "xclaim",
        "getdel",
    }
)
# Commands that can take a job out of hiveq's places: the consumers above, plus removals, deletes
# and scripts. A non-hiveq client whose last command is one of these is a prime suspect when a
# job vanishes (hiveq/diagnose/suspects.py).
TAKING_CMDS = CONSUMER_CMDS | frozenset(
    {
        "zrem",
        "zremrangebyrank",
        "zremrangebyscore",
        "zremrangebylex",
        "del",
        "unlink",
        "expire",
        "pexpire",
        "expireat",
        "pexpireat",
        "rename",
        "renamenx",
        "move",
        "restore",
        "flushdb",
        "flushall",
        "eval",
        "evalsha",
        "fcall",
    }
)


@dataclass(frozen=True)
class Client:
    """One row of CLIENT LIST, reduced to what identifies and explains it."""

    addr: str
    name: str
    lib: str
    age_s: int
    idle_s: int
    cmd: str
    blocked: bool
    db: int = 0

    @classmethod
    def parse(cls, row: dict[str, Any]) -> Client:
        lib = "/".join(x for x in (row.get("lib-name", ""), row.get("lib-ver", "")) if x)
        return cls(
            addr=str(row.get("addr", "")),
            name=str(row.get("name", "")),
            lib=lib,
            age_s=int(row.get("age") or 0),
            idle_s=int(row.get("idle") or 0),
            cmd=str(row.get("cmd", "")),
            blocked="b" in str(row.get("flags", "")),
            db=int(row.get("db") or 0),
        )

    @property
    def consuming(self) -> bool:
        return self.blocked or self.cmd.split("|")[0] in CONSUMER_CMDS

    @property
    def taking(self) -> bool:
        """Blocked, or its last command can take a job out of one of our places."""
        return self.blocked or self.cmd.split("|")[0] in TAKING_CMDS

    def describe(self) -> str:
        state = "blocked in" if self.blocked else "last command"
        return (
            f"{self.addr} name={self.name or '(none)'!r} lib={self.lib or '?'} age={self.age_s}s "
            f"idle={self.idle_s}s {state} {self.cmd or '?'}"
        )


def is_ours(c: Client, keys: Keyspace, worker_addrs: set[str]) -> bool:
    """A connection of this namespace: named by hiveq for it, or a live worker's address."""
    return c.name.startswith(keys.client_name("")) or c.addr in worker_addrs


async def list_clients(b: Broker) -> tuple[list[Client] | None, str]:
    """CLIENT LIST, or (None, why) where the server does not allow it (managed Redis, ACLs)."""
    try:
        rows = await b.client_list()
    except (rex.ResponseError, rex.NoPermissionError) as exc:
        return None, str(exc)
    return [Client.parse(r) for r in rows], ""


def _sample_lines(sample: Sample, by_addr: dict[str, Client], foreign: Iterable[str]) -> list[str]:
    out = []
    for addr in sorted(foreign):
        seen = sample.clients[addr]
        c = by_addr.get(addr)
        who = (
            f"name={c.name or '(none)'!r} lib={c.lib or '?'}"
            if c
            else f"name={seen.name or '(none)'!r} (gone from CLIENT LIST)"
        )
        cmds = ", ".join(f"{k}×{v}" for k, v in sorted(seen.commands.items()))
        keys = sorted(seen.our_keys) or sorted(seen.generic_keys)
        out.append(f"{addr} {who} ran {cmds} on {', '.join(keys[:5])}")
    return out


def consumers_check(
    b: Broker, clients: list[Client] | None, error: str, worker_addrs: set[str], sample: Sample | None
) -> Check:
    keys = b.keys
    by_addr = {c.addr: c for c in clients or []}
    touched: set[str] = set()
    if sample and sample.allowed:
        touched = {
            a
            for a, s in sample.clients.items()
            if s.our_keys
            and not is_ours(by_addr.get(a) or Client(a, s.name, "", 0, 0, "", False), keys, worker_addrs)
        }
    foreign = [
        c
        for c in clients or []
        if c.consuming
        and c.addr not in touched
        and not c.name.startswith("hiveq:")
        and not is_ours(c, keys, worker_addrs)
    ]
    listed = [c.describe() for c in foreign]
    kill = "stop that process (find it by its address, or `CLIENT KILL ADDR <address>`)"
    if touched:
        return fail(
            NAME,
            f"{len(touched)} client(s) that are not hiveq touched this namespace's keys during the "
            f"{sample.seconds if sample else 0} s MONITOR sample: they can take jobs without a claim"
            + (f"; {len(foreign)} other foreign consumer(s) on this Redis" if foreign else ""),
            (_sample_lines(sample, by_addr, touched) if sample else []) + listed,
            fix=f"The first client(s) listed are not hiveq workers of {keys.prefix}: {kill}; then run "
            "`hiveq doctor` again and check the vanished-jobs audit.",
        )
    if clients is None:
        return warn(
            NAME,
            f"CLIENT LIST is not allowed on this server ({error}); consumers cannot be named. "
            "The audit still proves whether any job left without a hiveq claim.",
            fix="Run `hiveq doctor` as a Redis user allowed CLIENT LIST and MONITOR "
            "(ACL: +client|list +monitor) to name consumers; on managed Redis use the provider's "
            "client list.",
        )
    if foreign:
        return warn(
            NAME,
            f"{len(foreign)} client(s) on this Redis pop or block on keys and are not hiveq workers "
            f"of {keys.prefix}: another application shares this server",
            listed,
            fix="hiveq keeps waiting jobs in sorted sets a list pop cannot drain, so these cannot "
            "steal jobs by a generic name; but if one of them is yours and pointed at hiveq's keys, "
            f"{kill}. Run `hiveq doctor --sample 5` to see which keys each one touches.",
        )
    ours = [c for c in clients if is_ours(c, keys, worker_addrs)]
    return ok(
        NAME,
        f"no foreign consumers: {len(clients)} clients, {len(ours)} of them hiveq connections of "
        "this namespace",
    )


def sample_check(sample: Sample, clients: list[Client] | None, b: Broker, worker_addrs: set[str]) -> Check:
    """What the MONITOR sample saw, address by address (generic names included)."""
    name = "monitor sample"
    if not sample.allowed:
        return warn(
            name,
            f"MONITOR is not allowed on this server ({sample.error}); no live sample of who touches "
            "which keys",
            fix="Grant the doctor's Redis user +monitor, or rely on CLIENT LIST and the audit.",
        )
    by_addr = {c.addr: c for c in clients or []}
    lines = _sample_lines(sample, by_addr, sample.clients)
    cut = " (line cap reached)" if sample.truncated else ""
    return ok(
        name,
        f"watched {sample.lines} commands for {sample.seconds} s{cut}; "
        f"{len(sample.clients)} client(s) touched our keys or a generic queue name",
        lines,
    )
