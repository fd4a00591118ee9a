"""Bounds on what a client may send, with their defaults: one room for every size rule.

`Limits` is the configurable part (HIVEQ_MAX_* settings); the rest are fixed by the protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRIORITY_MIN, PRIORITY_MAX, DEFAULT_PRIORITY = 1, 10, 5  # 1 is the most urgent
MAX_TITLE_CHARS = 200
MAX_ATTEMPTS_BOUND = 100
MAX_TIMEOUT_S = 86_400.0
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
IDEMPOTENCY_KEY_RULE = "must be 1-200 printable ASCII characters without spaces"
# Scheduled work (docs/schedules.md): a task's `run_at` or `delay_s` is at most this far ahead.
MAX_DELAY_S = 366 * 86_400
# What a failure keeps. The error sentence goes into the job hash and its custody event; the
# agent's traceback only into job:<id>:tracebacks (never the event stream): its last
# TRACEBACK_MAX_BYTES, for the last TRACEBACKS_KEPT failed attempts (about 40 KB a job at most).
ERROR_MAX_CHARS = 2000
TRACEBACK_MAX_BYTES = 8192
TRACEBACKS_KEPT = 5
# Durable agents (docs/durable.md). Signals sent to a job and not yet received are kept, at most
# SIGNALS_PENDING_MAX a job; a step's name is at most STEP_NAME_MAX_CHARS. Names starting with
# RESERVED_STEP_PREFIX are hiveq's own steps (spawn, waits).
SIGNALS_PENDING_MAX = 100
STEP_NAME_MAX_CHARS = 200
RESERVED_STEP_PREFIX = "hiveq."


@dataclass(frozen=True)
class Limits:
    """Size bounds, checked once between the edge (HTTP, CLI, SDK) and enqueue."""

    max_payload_bytes: int = 1_000_000  # one input, result or request body (UTF-8 bytes of JSON)
    max_description_chars: int = 10_000
    max_subtasks: int = 100
    max_metadata_bytes: int = 65_536  # a task's metadata, as JSON
    # A durable agent's steps: each result is one payload (max_payload_bytes); a job keeps at most
    # max_steps of them, max_steps_bytes together. Its streamed output keeps the last
    # max_output_bytes (older output is trimmed, with a marker saying how much).
    max_steps: int = 1000
    max_steps_bytes: int = 16_000_000
    max_output_bytes: int = 1_000_000


# JSON a client sends: nesting depth of a whole request body (objects and arrays, the body itself
# included). Deeper documents are refused up front instead of overflowing a parser's stack.
MAX_JSON_DEPTH = 64
