"""The only place key names are built. Every key lives under `hiveq:{app:env}:`.

The braces are a Redis Cluster hash tag: every key of a namespace hashes to one slot, so
multi-key scripts stay valid on a cluster. docs/protocol.md has the full key table.
"""

from __future__ import annotations

from dataclasses import dataclass

from hiveq.contract.protocol import NAME_RE, check_name

# key suffix -> Redis type, for the fixed keys of a namespace (checked by every script before it
# writes, see queue/assemble.py; by doctor; and named in errors).
FIXED_KEY_TYPES: dict[str, str] = {
    "meta": "hash",
    "seq": "string",
    "agents": "set",
    "agent_modules": "hash",
    "jobs": "zset",
    "blocked": "zset",
    "delayed": "zset",
    "leases": "zset",
    "suspended": "zset",  # durable agents waiting for children or a signal, score = timeout ms (or +inf)
    "succeeded": "zset",
    "dead": "zset",
    "cancelled": "zset",
    "quarantine": "zset",
    "vanished": "zset",  # jobs that left our places without a hiveq script, score = detected ms
    "tasks": "zset",
    "finished": "zset",
    "events": "stream",
    "workers": "zset",
    "stats": "hash",
    "doctor": "hash",  # written by `hiveq doctor`: dead-letter count at its last run
    "watch": "string",  # the conservation watch's lease: the id of the process running it
    "foreign": "zset",  # addresses of non-hiveq clients caught near a vanishing, score = last ms
    "limits": "hash",  # limit rules: limit key (or pattern ending in *) -> rule JSON (docs/limits.md)
    "archiver": "string",  # the archiver lease: the id of the one archiver that runs (archive_lease.lua)
    "clock": "hash",  # `seen`/`up_since` (ms): when workers last reached Redis, and since when without a gap
    "schedules": "zset",  # recurring schedules by name, score = next fire ms (docs/schedules.md)
}

# The consumer group (and its one consumer) through which the archiver follows `events`.
ARCHIVE_GROUP = "hiveq-archiver"


@dataclass(frozen=True)
class Keyspace:
    app: str
    env: str

    def __post_init__(self) -> None:
        check_name("app", self.app)
        check_name("env", self.env)

    @property
    def prefix(self) -> str:
        return f"hiveq:{{{self.app}:{self.env}}}:"

    def key(self, suffix: str) -> str:
        return self.prefix + suffix

    # Fixed keys.
    @property
    def meta(self) -> str:
        return self.key("meta")

    @property
    def seq(self) -> str:
        return self.key("seq")

    @property
    def agents(self) -> str:
        return self.key("agents")

    @property
    def agent_modules(self) -> str:
        return self.key("agent_modules")

    @property
    def jobs(self) -> str:
        return self.key("jobs")

    @property
    def blocked(self) -> str:
        return self.key("blocked")

    @property
    def delayed(self) -> str:
        return self.key("delayed")

    @property
    def leases(self) -> str:
        return self.key("leases")

    @property
    def suspended(self) -> str:
        return self.key("suspended")

    @property
    def succeeded(self) -> str:
        return self.key("succeeded")

    @property
    def dead(self) -> str:
        return self.key("dead")

    @property
    def cancelled(self) -> str:
        return self.key("cancelled")

    @property
    def quarantine(self) -> str:
        return self.key("quarantine")

    @property
    def vanished(self) -> str:
        return self.key("vanished")

    @property
    def watch(self) -> str:
        return self.key("watch")

    @property
    def foreign(self) -> str:
        return self.key("foreign")

    @property
    def tasks(self) -> str:
        return self.key("tasks")

    @property
    def finished(self) -> str:
        return self.key("finished")

    @property
    def events(self) -> str:
        return self.key("events")

    @property
    def workers(self) -> str:
        return self.key("workers")

    @property
    def stats(self) -> str:
        return self.key("stats")

    @property
    def limits(self) -> str:
        return self.key("limits")

    def limit_counters(self, limit_key: str) -> str:
        """A concrete limit key's counters (hash): cool, tw/tu (tokens this minute), bt/bu
        (budget used), thr (throttled total), tag (its fairness flow's last sequence); a rate
        rule's ring of last starts: ri (starts recorded), rn (ring size), r<i> (start ms)."""
        return self.key(f"lim:c:{limit_key}")

    def limit_holders(self, limit_key: str) -> str:
        """Jobs holding a slot under a concrete limit key (zset, score = claim ms)."""
        return self.key(f"lim:h:{limit_key}")

    def limit_pattern_keys(self, pattern: str) -> str:
        """The concrete keys claims have seen under a pattern rule (set), for views and metrics."""
        return self.key(f"lim:k:{pattern}")

    def limit_waiting(self, limit_key: str) -> str:
        """Agents with a job waiting for a slot of a concrete limit key (set): woken on release."""
        return self.key(f"lim:w:{limit_key}")

    @property
    def archiver(self) -> str:
        return self.key("archiver")

    @property
    def schedules(self) -> str:
        return self.key("schedules")

    # Per-record keys.
    def queue(self, agent: str) -> str:
        """Waiting jobs of one agent: a sorted set, so a stray BRPOP/LPOP gets WRONGTYPE."""
        return self.key(f"q:{agent}")

    def wake(self, agent: str) -> str:
        """Wake-up marker for blocked fetchers of one agent (a one-member sorted set)."""
        return self.key(f"wake:{agent}")

    def job(self, job_id: str) -> str:
        return self.key(f"job:{job_id}")

    def job_log(self, job_id: str) -> str:
        return self.key(f"job:{job_id}:log")

    def job_tracebacks(self, job_id: str) -> str:
        """The agent tracebacks of a job's last failed attempts (a list; bounded by fail.lua)."""
        return self.key(f"job:{job_id}:tracebacks")

    def job_steps(self, job_id: str) -> str:
        """A durable agent's stored step results: step key -> JSON (a hash)."""
        return self.key(f"job:{job_id}:steps")

    def job_signals(self, job_id: str) -> str:
        """Signals sent to a job that no wait has received yet, oldest first (a list)."""
        return self.key(f"job:{job_id}:signals")

    def job_output(self, job_id: str) -> str:
        """The job's streamed output, its last HIVEQ_MAX_OUTPUT_BYTES (a string)."""
        return self.key(f"job:{job_id}:output")

    def inbox(self, worker_id: str) -> str:
        """A worker's wake-up marker (one-member zset): a cancel of a job it runs sets it, so the
        worker beats at once and stops the agent instead of at its next heartbeat."""
        return self.key(f"inbox:{worker_id}")

    def task(self, task_id: str) -> str:
        return self.key(f"task:{task_id}")

    def idempotency(self, idem_key: str) -> str:
        return self.key(f"idem:{idem_key}")

    def worker(self, worker_id: str) -> str:
        return self.key(f"worker:{worker_id}")

    def schedule(self, name: str) -> str:
        """One recurring schedule: its cron, zone, task and what it last fired (a hash)."""
        return self.key(f"sched:{name}")

    def fixed_keys(self) -> dict[str, str]:
        """Full key name -> expected Redis type, for type checks."""
        return {self.key(s): t for s, t in FIXED_KEY_TYPES.items()}

    def client_name(self, role: str, ident: str = "") -> str:
        """A `CLIENT SETNAME` value that makes every hiveq connection recognisable."""
        tail = f":{ident}" if ident else ""
        return f"hiveq:{self.app}:{self.env}:{role}{tail}"


# Across namespaces (read-only hints about other namespaces' workers on the same Redis).
ANY_WORKERS_PATTERN = "hiveq:{*}:workers"  # a SCAN MATCH pattern: every namespace's `workers` key


def namespace_of_workers_key(key: str) -> Keyspace | None:
    """`hiveq:{app:env}:workers` -> that namespace (None for anything else)."""
    if not (key.startswith("hiveq:{") and key.endswith("}:workers")):
        return None
    return _keyspace(*key[len("hiveq:{") : -len("}:workers")].split(":"))


def namespace_of_worker_client(name: str) -> tuple[Keyspace, str] | None:
    """A worker's connection name `hiveq:<app>:<env>:worker:<id>` -> (its namespace, worker id)."""
    parts = name.split(":", 4)
    if len(parts) != 5 or parts[0] != "hiveq" or parts[3] != "worker":
        return None
    ks = _keyspace(parts[1], parts[2])
    return (ks, parts[4]) if ks is not None else None


def _keyspace(*names: str) -> Keyspace | None:
    if len(names) != 2 or not all(NAME_RE.match(n) for n in names):
        return None
    return Keyspace(names[0], names[1])
