"""hiveq: AI-agent work on Redis where no job disappears silently."""

from typing import TYPE_CHECKING, Any

from hiveq.agents.registry import AgentContext, agent
from hiveq.settings import Settings

if TYPE_CHECKING:
    from hiveq.client import AsyncClient, Client

__version__ = "0.1.0"
PROTOCOL_VERSION = 2  # 2: sparse records, one enqueue stream entry per group of tasks

__all__ = ["PROTOCOL_VERSION", "AgentContext", "AsyncClient", "Client", "Settings", "__version__", "agent"]


def __getattr__(name: str) -> Any:
    """`hiveq.Client` / `hiveq.AsyncClient`, imported on first use: workers never load httpx and the
    SDK's imports (which reach the engine) do not cycle back into this package while it loads."""
    if name in ("Client", "AsyncClient"):
        from hiveq import client

        return getattr(client, name)
    raise AttributeError(f"module 'hiveq' has no attribute {name!r}")
