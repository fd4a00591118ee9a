"""Every error hiveq raises, and the one closed set of script return codes mapped onto them.

Each message names the field, key or rule and says what to do, so it can be shown to a user as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any


class Code(IntEnum):
    """Return codes of the Lua scripts (mirrored in queue/lua/_lib.lua)."""

    OK = 0
    NOT_FOUND = 1
    STALE_TOKEN = 2
    WRONG_STATE = 3
    DUPLICATE = 4
    NAMESPACE_MISMATCH = 5
    PROTOCOL_MISMATCH = 6


class HiveqError(Exception):
    """Base class; `str(err)` is a complete, user-facing sentence."""

    status_code = 500


class ConfigError(HiveqError):
    status_code = 500


class ValidationFailed(HiveqError):
    """Bad input: names the field and the rule."""

    status_code = 422

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class PayloadTooLarge(HiveqError):
    status_code = 413

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.field = what
        super().__init__(
            f"{what} is {size} bytes, over the limit of {limit} bytes; "
            "send a smaller payload or raise HIVEQ_MAX_PAYLOAD_BYTES"
        )


class NotFound(HiveqError):
    status_code = 404

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(
            f"unknown {kind} id {ident!r}: no such {kind} in this namespace (it may have expired)"
        )


class Conflict(HiveqError):
    """The record exists but is in a state that does not allow the request."""

    status_code = 409


class StaleLease(Conflict):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id!r}: this worker's lease is no longer valid (it expired, was reclaimed or "
            "the job was cancelled); the result was not recorded"
        )


class NamespaceError(HiveqError):
    """The namespace belongs to someone else or speaks another protocol version."""

    status_code = 409


class WrongTypeError(HiveqError):
    status_code = 500

    def __init__(self, key: str, found: str, expected: str) -> None:
        self.key = key
        self.found = found
        self.expected = expected
        super().__init__(
            f"Redis key {key!r} holds a {found}, but hiveq keeps a {expected} there. Another "
            "application is probably using the same key name: point hiveq at another namespace "
            "(HIVEQ_APP/HIVEQ_ENV) or database, or remove the foreign key; run `hiveq doctor`"
        )


class EnqueueIncomplete(HiveqError):
    """A many-task enqueue went out in several script calls and Redis failed part-way through."""

    status_code = 503

    def __init__(self, enqueued: Sequence[Any], total: int, cause: Exception) -> None:
        self.enqueued = list(enqueued)  # the Enqueued results of the tasks that made it
        self.cause = cause
        super().__init__(
            f"{len(self.enqueued)} of {total} tasks were enqueued before Redis failed ({cause}); "
            "they are kept and will run (see .enqueued); enqueue the others again (idempotency keys "
            "make that retry safe)"
        )


class RedisUnavailable(HiveqError):
    status_code = 503

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(
            f"Redis at {url} is unreachable ({reason}); check that it is running and REDIS_URL is right"
        )
