"""hiveq: AI-agent work on Redis where no job disappears silently."""

from hiveq.settings import Settings

__version__ = "0.1.0"
PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "Settings", "__version__"]
