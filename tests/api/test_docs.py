"""The API docs work offline (Swagger UI and ReDoc served from the installed package) and follow
the token rule: with tokens set they need one, unless HIVEQ_PUBLIC_DOCS=1."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from playwright.async_api import Request, Route, async_playwright, expect

from hiveq.api.app import create_app
from hiveq.plan import PLANNERS
from hiveq.queue.broker import Broker
from hiveq.settings import Settings
from tests.api.live import asgi_client, live_server
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS

EXTERNAL = re.compile(r"(https?:)?//(?!127\.0\.0\.1|localhost)[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


class Links(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.parametrize(("page", "assets"), [("/docs", 3), ("/redoc", 2)])
async def test_docs_page_and_every_asset_it_references_are_local(
    api: httpx.AsyncClient, page: str, assets: int
) -> None:
    r = await api.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not EXTERNAL.search(r.text), EXTERNAL.search(r.text)
    links = Links()
    links.feed(r.text)
    assert len(links.urls) == assets and all(u.startswith("/docs/assets/") for u in links.urls)
    for url in links.urls:
        asset = await api.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".png"):
            assert asset.content.startswith(b"\x89PNG"), url
        else:  # the real libraries, not an error page
            assert len(asset.content) > 100_000, url
    assert r.headers["content-security-policy"].startswith("default-src 'self'")  # nothing can call out
    if page == "/docs":
        assert '"validatorUrl": null' in r.text  # Swagger UI must not ask its online validator


async def test_with_tokens_docs_need_one_by_header_or_query(broker: Broker) -> None:
    app = create_app(broker.settings.with_(api_tokens=("tok",)))
    async with asgi_client(app) as api:
        for path in ("/docs", "/redoc", "/openapi.json"):
            r = await api.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "unauthorized"
            assert (await api.get(path, headers={"Authorization": "Bearer tok"})).status_code == 200
            assert (await api.get(path, params={"token": "nope"})).status_code == 401
        page = await api.get("/docs", params={"token": "tok"})
        assert page.status_code == 200 and "/openapi.json?token=tok" in page.text  # the viewer can load it
        assert (await api.get("/docs/assets/swagger-ui.css")).status_code == 200  # library files: public
        assert (await api.get("/health")).status_code == 200


async def test_public_docs_setting_opens_only_the_docs(broker: Broker) -> None:
    app = create_app(broker.settings.with_(api_tokens=("tok",), public_docs=True))
    async with asgi_client(app) as api:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await api.get(path)).status_code == 200, path
        assert (await api.get("/tasks")).status_code == 401


def test_public_docs_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"HIVEQ_PUBLIC_DOCS": "1"}).api.public_docs
    assert not Settings.from_env({}).api.public_docs
    with pytest.raises(Exception, match="HIVEQ_PUBLIC_DOCS='maybe' is not a yes/no value"):
        Settings.from_env({"HIVEQ_PUBLIC_DOCS": "maybe"})


def test_schema_declares_planner_as_an_enum_of_the_registered_planners() -> None:
    spec = create_app(Settings()).openapi()
    planner = spec["components"]["schemas"]["TaskRequest"]["properties"]["planner"]
    assert {"type": "string", "enum": sorted(PLANNERS)} in planner["anyOf"]
    assert sorted(PLANNERS) == ["explicit", "llm", "template"]


async def test_swagger_ui_and_redoc_render_in_chromium_with_the_network_cut_off(broker: Broker) -> None:
    """The proof of "works offline": every request that leaves the machine is aborted and listed."""
    outside: list[str] = []
    errors: list[str] = []

    async def local_only(route: Route, request: Request) -> None:
        if request.url.startswith("http://127.0.0.1:"):
            await route.continue_()
        else:
            outside.append(request.url)
            await route.abort()

    async with (
        live_server(broker.settings.with_(api_tokens=("tok",))) as url,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            context.set_default_timeout(UI_TIMEOUT_MS)
            await context.route("**/*", local_only)
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{url}/docs?token=tok")
            await expect(
                page.locator(".opblock-summary-path", has_text="/tasks/{task_id}/events")
            ).to_be_visible()
            await page.goto(f"{url}/redoc?token=tok")
            await expect(page.get_by_text("/tasks/{task_id}/events").first).to_be_attached()
        finally:
            await browser.close()
    assert outside == [] and errors == []
