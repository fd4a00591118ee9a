"""tracebacks: an agent's exception as text that can be kept with its job and shown to anyone who
may read the job (`hiveq trace`, `GET /jobs/{id}`, the dead letters, the dashboard).

The text is the standard traceback (no local variables) from the agent's first frame on: the
worker's own frames before it say nothing about the agent. Secrets the worker knows (the Redis
password, API tokens, the LLM key) and the password part of any URL are replaced by `***`,
because an agent can put any of them into an exception message. The size bound is applied by
`hiveq.queue.retry.fail` for every caller.
"""

from __future__ import annotations

import concurrent.futures.thread
import re
import traceback
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from hiveq.settings import Settings

MASK = "***"
# The worker's frames that come before the agent's: the executor call in execute.py and, for a
# sync agent, the thread pool's runner.
PLUMBING = {
    str(Path(__file__).with_name("execute.py")),
    concurrent.futures.thread.__file__,
}
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]+@", re.IGNORECASE)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value a worker holds, longest first (so a longer one is masked whole)."""
    found = list(settings.api.api_tokens)
    if settings.llm.api_key:
        found.append(settings.llm.api_key)
    url = urlsplit(settings.redis_url)
    if url.password:
        found.append(url.password)
    found += parse_qs(url.query).get("password", [])
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, MASK)
    return URL_PASSWORD.sub(rf"\1{MASK}@", text)


def _agent_frames(tb: TracebackType | None) -> TracebackType | None:
    first = tb
    while tb is not None and tb.tb_frame.f_code.co_filename in PLUMBING:
        tb = tb.tb_next
    return tb or first  # an error inside hiveq itself keeps every frame


def agent_traceback(exc: BaseException, secrets: list[str]) -> str:
    """The traceback of `exc` (with its causes) from the agent's first frame, `secrets` masked."""
    te = traceback.TracebackException(type(exc), exc, _agent_frames(exc.__traceback__))
    return scrub("".join(te.format()), secrets)
