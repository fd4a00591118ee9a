"""Every error hiveq raises, the one table that gives each its code, HTTP status and CLI exit
code, and the closed set of script return codes.

Each message names the field, key or rule and says what to do, so it can be shown to a user as
is. The API answers `{"error": {"code", "message", "field"}}` with `http_status`; the CLI prints
the message and exits with `exit_code`; the SDK rebuilds the class from `code`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hiveq.contract.models import ChildOutcome

from hiveq.contract.redact import redact, url_secrets


class Code(IntEnum):
    """Return codes of the Lua scripts (mirrored in queue/lua/_lib.lua)."""

    OK = 0
    NOT_FOUND = 1
    STALE_TOKEN = 2
    WRONG_STATE = 3
    DUPLICATE = 4
    NAMESPACE_MISMATCH = 5
    PROTOCOL_MISMATCH = 6


class ExitCode(IntEnum):
    """Exit codes of the `hiveq` command (a script can rely on them)."""

    OK = 0
    FAILURE = 1  # a task failed, the doctor found a failure, an unexpected error
    USAGE = 2  # bad arguments, bad configuration, bad input
    NOT_FOUND = 3
    CONFLICT = 4
    REDIS_UNAVAILABLE = 5


class HiveqError(Exception):
    """Base class; `str(err)` is a complete, user-facing sentence."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE
    field: str | None = None


class ConfigError(HiveqError):
    code = "config_error"
    exit_code = ExitCode.USAGE


class ValidationFailed(HiveqError):
    """Bad input: names the field and the rule."""

    code = "validation_failed"
    http_status = 422
    exit_code = ExitCode.USAGE

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class PayloadTooLarge(HiveqError):
    code = "payload_too_large"
    http_status = 413
    exit_code = ExitCode.USAGE

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.field = what
        super().__init__(
            f"{what} is {size} bytes, over the limit of {limit} bytes; "
            "send a smaller payload or raise HIVEQ_MAX_PAYLOAD_BYTES"
        )


class UnsupportedMediaType(HiveqError):
    code = "unsupported_media_type"
    http_status = 415
    exit_code = ExitCode.USAGE

    def __init__(self, found: str) -> None:
        self.field = "Content-Type"
        super().__init__(
            f"Content-Type {found!r} is not supported; send the task as JSON with "
            "'Content-Type: application/json'"
        )


class Unauthorized(HiveqError):
    code = "unauthorized"
    http_status = 401
    exit_code = ExitCode.USAGE


class NotFound(HiveqError):
    code = "not_found"
    http_status = 404
    exit_code = ExitCode.NOT_FOUND

    def __init__(self, kind: str, ident: str, why: str = "it may have expired") -> None:
        self.kind = kind
        self.ident = ident
        self.field = f"{kind}_id"
        super().__init__(f"unknown {kind} id {ident!r}: no such {kind} in this namespace ({why})")


class Conflict(HiveqError):
    """The record exists but is in a state that does not allow the request."""

    code = "conflict"
    http_status = 409
    exit_code = ExitCode.CONFLICT


class NamespaceError(HiveqError):
    """The namespace belongs to someone else or speaks another protocol version."""

    code = "namespace_error"
    http_status = 409
    exit_code = ExitCode.CONFLICT


class WrongTypeError(HiveqError):
    """One of hiveq's keys holds another Redis type: another application wrote it."""

    code = "wrong_type"
    http_status = 409
    exit_code = ExitCode.CONFLICT

    def __init__(self, key: str, found: str, expected: str) -> None:
        self.key = key
        self.found = found
        self.expected = expected
        self.field = key
        super().__init__(
            f"Redis key {key!r} holds a {found}, but hiveq keeps a {expected} there. Another "
            "application is probably using the same key name: run `hiveq repair` to move the "
            "foreign value aside (nothing is deleted), then find its writer (`hiveq doctor "
            "--sample 5`) or point hiveq at another namespace (HIVEQ_APP/HIVEQ_ENV)"
        )


class RedisFull(HiveqError):
    """Redis refused a write: maxmemory is reached and its policy does not evict (noeviction).
    A refused script or command wrote nothing (Redis refuses a script before its first write)."""

    code = "redis_full"
    http_status = 507
    exit_code = ExitCode.REDIS_UNAVAILABLE

    def __init__(self, maxmemory: str, policy: str) -> None:
        self.maxmemory = maxmemory
        self.policy = policy
        super().__init__(
            f"Redis is full (maxmemory {maxmemory} reached, policy {policy}): nothing was written; "
            "free memory or raise maxmemory"
        )


class RedisUnavailable(HiveqError):
    """Redis could not be reached. `sent` tells whether the command may have reached the server
    (the connection broke after sending: a write may have happened) or surely did not (it failed
    while connecting). The URL and the reason are redacted: no password reaches a message."""

    code = "redis_unavailable"
    http_status = 503
    exit_code = ExitCode.REDIS_UNAVAILABLE

    def __init__(self, url: str, reason: str, *, sent: bool = False, effect: str = "") -> None:
        self.url = redact(url)
        self.reason = redact(reason, url_secrets(url))
        self.sent = sent
        message = (
            f"Redis at {self.url} is unreachable ({self.reason}); check that it is running and "
            "REDIS_URL is right"
        )
        super().__init__(f"{message}; {effect}" if effect else message)


class OutcomeUnknown(RedisUnavailable):
    """A write was sent and the connection broke before its answer: it may have happened."""

    code = "outcome_unknown"

    def __init__(self, cause: RedisUnavailable, idempotency_key: str | None) -> None:
        retry = (
            "retry with the same Idempotency-Key: you get that task if it was created, a new one if not"
            if idempotency_key
            else "look for it (GET /tasks or `hiveq tasks` list the newest first) before submitting "
            "again, and send an Idempotency-Key (--idempotency-key) so that a retry is safe"
        )
        HiveqError.__init__(
            self,
            f"Redis at {cause.url} failed after the task was sent ({cause.reason}): the task may "
            f"exist; {retry}",
        )
        self.url, self.reason, self.sent = cause.url, cause.reason, True


class NotReplicated(RedisUnavailable):
    """HIVEQ_MIN_REPLICAS: the write happened on the primary, but fewer replicas than asked
    confirmed it within HIVEQ_REPLICA_TIMEOUT_MS, so it is not acknowledged (a failover now could
    lose it)."""

    code = "not_replicated"

    def __init__(
        self, url: str, what: str, confirmed: int, wanted: int, timeout_ms: int, advice: str = ""
    ) -> None:
        advice = advice or "the task may exist; retry with the same Idempotency-Key (a retry is safe)"
        HiveqError.__init__(
            self,
            f"{what} was written on the primary at {redact(url)} but only {confirmed} of "
            f"{wanted} replica(s) (HIVEQ_MIN_REPLICAS) confirmed it within {timeout_ms} ms "
            f"(HIVEQ_REPLICA_TIMEOUT_MS); it is not acknowledged: {advice}; check the replicas with "
            "`hiveq doctor`",
        )
        self.url, self.reason, self.sent = redact(url), "replicas did not confirm", True
        self.confirmed, self.wanted = confirmed, wanted
        self.reply: Any = None  # the script's own answer (it ran on the primary)


class HostNotAllowed(HiveqError):
    """The Host header names a host this API does not serve (DNS rebinding, a wrong proxy)."""

    code = "host_not_allowed"
    http_status = 421
    exit_code = ExitCode.USAGE

    def __init__(self, host: str, allowed: Sequence[str]) -> None:
        self.field = "Host"
        super().__init__(
            f"Host {host[:100]!r} is not one this API answers to (allowed: {', '.join(allowed)}); "
            "open it by one of those names, or add this one to HIVEQ_ALLOWED_HOSTS"
        )


class OriginNotAllowed(HiveqError):
    """A browser on another origin tried to change state (a cross-site request)."""

    code = "origin_not_allowed"
    http_status = 403
    exit_code = ExitCode.USAGE

    def __init__(self, origin: str) -> None:
        self.field = "Origin"
        super().__init__(
            f"requests that change state are refused from web page origin {origin[:100]!r}: only "
            "this API's own pages (the dashboard) and non-browser clients may send them; add the "
            "origin's host to HIVEQ_ALLOWED_HOSTS if it is yours"
        )


class EnqueueIncomplete(HiveqError):
    """A many-task enqueue went out in several script calls and Redis failed part-way through."""

    code = "enqueue_incomplete"
    http_status = 503
    exit_code = ExitCode.REDIS_UNAVAILABLE

    def __init__(self, enqueued: Sequence[Any], total: int, cause: Exception) -> None:
        self.enqueued = list(enqueued)  # the Enqueued results of the tasks that made it
        self.cause = cause
        super().__init__(
            f"{len(self.enqueued)} of {total} tasks were enqueued before Redis failed ({cause}); "
            "they are kept and will run (see .enqueued); enqueue the others again (idempotency keys "
            "make that retry safe)"
        )


class ChildFailed(HiveqError):
    """Raised by `ctx.wait_for` when a child did not succeed (dead-lettered, quarantined or
    cancelled). An agent may catch it and carry on; uncaught, it dead-letters the parent at once
    (a retry would replay the same stored outcome). `outcomes` has every child of the wait."""

    code = "child_failed"
    http_status = 409

    def __init__(self, outcomes: Sequence[ChildOutcome]) -> None:
        self.outcomes = list(outcomes)
        self.failed = [o for o in self.outcomes if o.state != "succeeded"]
        self.results = {o.job_id: o.result for o in self.outcomes if o.state == "succeeded"}
        said = "; ".join(
            f"{o.subtask_id} {o.state}" + (f" ({o.error})" if o.error else "") for o in self.failed[:5]
        )
        more = f"; and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
        super().__init__(
            f"{len(self.failed)} of {len(self.outcomes)} children did not succeed: {said}{more}; catch "
            "hiveq.ChildFailed in the agent to handle it (its .outcomes has every child's state and result)"
        )


class SignalTimeout(HiveqError):
    """Raised by `ctx.wait_for_signal` when its timeout passed before a signal arrived. Uncaught,
    it dead-letters the job at once (a retry would replay the same stored timeout)."""

    code = "signal_timeout"
    http_status = 409

    def __init__(self, name: str, timeout_s: float | None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        after = f" within {timeout_s:g} s" if timeout_s is not None else ""
        super().__init__(
            f"no signal {name!r} arrived{after}; catch hiveq.SignalTimeout in the agent to handle it"
        )


class ArchiveUnavailable(HiveqError):
    """The archive database (HIVEQ_ARCHIVE_URL) cannot be read; live work in Redis still answers."""

    code = "archive_unavailable"
    http_status = 503
    exit_code = ExitCode.FAILURE

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"the archive at {where} cannot be read ({reason}); check that the database is up and "
            "HIVEQ_ARCHIVE_URL is right (`hiveq archiver --status`)"
        )


# The one table: error code -> exception class (its HTTP status and exit code are on the class).
ERRORS: dict[str, type[HiveqError]] = {
    cls.code: cls
    for cls in (
        HiveqError,
        ConfigError,
        ValidationFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unauthorized,
        NotFound,
        Conflict,
        NamespaceError,
        WrongTypeError,
        RedisFull,
        RedisUnavailable,
        OutcomeUnknown,
        NotReplicated,
        HostNotAllowed,
        OriginNotAllowed,
        EnqueueIncomplete,
        ChildFailed,
        SignalTimeout,
        ArchiveUnavailable,
    )
}
# Codes that the HTTP layer itself answers with (routing, methods), by status.
HTTP_ONLY_CODES = {404: "not_found", 405: "method_not_allowed"}


def code_for_status(status: int) -> str:
    """The error code of an HTTP error that no hiveq exception raised (Starlette's own 404/405)."""
    if status in HTTP_ONLY_CODES:
        return HTTP_ONLY_CODES[status]
    for cls in ERRORS.values():
        if cls.http_status == status and cls is not HiveqError:
            return cls.code
    return "http_error"
