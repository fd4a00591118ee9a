"""The protocol's identity and its id formats: what a producer or a worker in any language must
agree on (docs/protocol.md documents the same values)."""

from __future__ import annotations

import re
import secrets

from hiveq.contract.errors import ConfigError

VERSION = "0.1.0"  # the package version (pyproject.toml holds the same string)
PROTOCOL_VERSION = 2  # 2: sparse records, one enqueue stream entry per group of tasks

# Namespace parts (HIVEQ_APP, HIVEQ_ENV) become part of every key: a short, safe alphabet.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

SUBTASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
AGENT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
AGENT_RE = re.compile(AGENT_PATTERN)
TASK_ID_PATTERN = r"^t[0-9a-f]{16}$"
SIGNAL_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # a durable agent's signal (docs/durable.md)
SIGNAL_NAME_RE = re.compile(SIGNAL_NAME_PATTERN)
SCHEDULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # a recurring schedule (docs/schedules.md)
SCHEDULE_NAME_RE = re.compile(SCHEDULE_NAME_PATTERN)
# What a pattern means, for error messages (pydantic checks patterns in Rust, which is several
# times cheaper than a Python validator; the API shows these words instead of the regex).
PATTERN_RULES = {
    SUBTASK_ID_PATTERN: "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
    AGENT_PATTERN: "must be 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
    SIGNAL_NAME_PATTERN: "must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
    SCHEDULE_NAME_PATTERN: "must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-', starting with a "
    "letter or digit",
}


def check_name(kind: str, value: str) -> str:
    """App and env names become part of every key, so only a safe, short alphabet is allowed."""
    if not NAME_RE.match(value):
        raise ConfigError(
            f"{kind} {value!r} is not a valid name: use 1-32 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def new_task_ids(n: int) -> list[str]:
    """`n` task ids ("t" + 16 hex digits) from one read of the OS random source, not one each."""
    text = secrets.token_hex(8 * n)
    return ["t" + text[i : i + 16] for i in range(0, 16 * n, 16)]


def job_id_for(task_id: str, subtask_id: str) -> str:
    """A job id is its task id and its subtask id joined by a dot (task ids hold no dot)."""
    return f"{task_id}.{subtask_id}"


def task_of(job_id: str) -> str:
    """The task id inside a job id."""
    return job_id.partition(".")[0]


def subtask_of(job_id: str) -> str:
    """The subtask id inside a job id."""
    return job_id.partition(".")[2]


def job_prefix(task_id: str) -> str:
    """What every job id of the task starts with (for building many ids on a hot path)."""
    return task_id + "."
