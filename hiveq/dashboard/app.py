"""Mount the dashboard's static files into the API app.

The dashboard is plain files shipped as package data: no build step and nothing fetched
from the internet, so it works offline and behind firewalls. It talks to the same HTTP
API as every other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")


async def _to_dashboard() -> RedirectResponse:
    """Send a browser that opens the bare address to the dashboard."""
    return RedirectResponse(url="/dashboard/", status_code=307)


def mount(app: FastAPI) -> None:
    """Serve the dashboard at `/dashboard/` and redirect `/` there."""
    app.add_api_route("/", _to_dashboard, methods=["GET"], include_in_schema=False)
    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
