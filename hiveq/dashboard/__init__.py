"""The build-free web dashboard: static HTML, one JS module and CSS, mounted by the API."""

from hiveq.dashboard.app import mount

__all__ = ["mount"]
