"""tracebacks: an agent's exception as text that can be kept with its job and shown to anyone who
may read the job (`hiveq trace`, `GET /jobs/{id}`, the dead letters, the dashboard).

The text is the standard traceback (no local variables) from the agent's first frame on: the
worker's own frames before it say nothing about the agent. Secrets the worker knows
(`Settings.secrets`: the Redis password, API tokens, the LLM key) and the password part of any
URL are masked by `hiveq.contract.redact`, because an agent can put any of them into an
exception message. The size bound is applied by
`hiveq.queue.retry.fail` for every caller.
"""

from __future__ import annotations

import concurrent.futures.thread
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from hiveq.contract.redact import redact

# The worker's frames that come before the agent's: the executor call in execute.py and, for a
# sync agent, the thread pool's runner.
PLUMBING = {
    str(Path(__file__).with_name("execute.py")),
    concurrent.futures.thread.__file__,
}


def _agent_frames(tb: TracebackType | None) -> TracebackType | None:
    first = tb
    while tb is not None and tb.tb_frame.f_code.co_filename in PLUMBING:
        tb = tb.tb_next
    return tb or first  # an error inside hiveq itself keeps every frame


def agent_traceback(exc: BaseException, secrets: Sequence[str]) -> str:
    """The traceback of `exc` (with its causes) from the agent's first frame, `secrets` masked."""
    te = traceback.TracebackException(type(exc), exc, _agent_frames(exc.__traceback__))
    return redact("".join(te.format()), secrets)
