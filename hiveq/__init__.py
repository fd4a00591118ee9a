"""hiveq: AI-agent work on Redis where no job disappears silently.

The package face only names things; each is imported on first use (PEP 562), so importing any
part of hiveq (the engine, the SDK) loads that part and the contract layer, nothing else: a
worker never loads httpx, the SDK never loads redis-py, the engine never loads the agents.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from hiveq.contract.protocol import PROTOCOL_VERSION, VERSION

if TYPE_CHECKING:
    from hiveq.agents.registry import AgentContext, RateLimited, agent
    from hiveq.client import AsyncClient, Client
    from hiveq.contract.errors import ChildFailed, SignalTimeout
    from hiveq.settings import Settings

__version__ = VERSION

_LAZY = {
    "AgentContext": "hiveq.agents.registry",
    "agent": "hiveq.agents.registry",
    "RateLimited": "hiveq.agents.registry",  # an agent's "provider said 429" (docs/limits.md)
    "Client": "hiveq.client",
    "AsyncClient": "hiveq.client",
    "Settings": "hiveq.settings",
    "ChildFailed": "hiveq.contract.errors",  # raised by ctx.wait_for (durable agents)
    "SignalTimeout": "hiveq.contract.errors",  # raised by ctx.wait_for_signal
}

__all__ = [
    "PROTOCOL_VERSION",
    "AgentContext",
    "AsyncClient",
    "ChildFailed",
    "Client",
    "RateLimited",
    "Settings",
    "SignalTimeout",
    "__version__",
    "agent",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hiveq' has no attribute {name!r}")
