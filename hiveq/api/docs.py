"""The API's own docs, served offline: Swagger UI at `/docs`, ReDoc at `/redoc`, the schema at
`/openapi.json`. The viewers' files come from the installed `fastapi-offline` package (Swagger
UI's dist and ReDoc's standalone bundle), so no page loads anything from a CDN.

With API tokens set, the three routes need a token unless `HIVEQ_PUBLIC_DOCS=1`. A browser
opening a page cannot send a header, so `?token=` is accepted (as for SSE), and the page then
asks for the schema with the same token. The asset files are the libraries' own and stay public.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from hiveq.api.deps import require_docs_token

ASSETS_URL = "/docs/assets"
ASSETS = resources.files("fastapi_offline") / "static"
OPENAPI_URL = "/openapi.json"
# Swagger UI asks validator.swagger.io about the schema unless told not to: offline, it must not.
SWAGGER_PARAMETERS = {"validatorUrl": None}
# The pages may load only from this server: ReDoc's sidebar logo is hard-wired to its CDN (it hides
# itself when the image fails), and no viewer version may call out. Inline code is the pages' own.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:"
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_docs_token)])


def _urls(request: Request) -> tuple[str, str]:
    """The assets' base URL and the schema URL for a page, behind any proxy prefix (root_path);
    the schema URL carries the page's own `?token=`, so the viewer can load it."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    token = request.query_params.get("token")
    schema = root + OPENAPI_URL + (f"?token={quote(token, safe='')}" if token else "")
    return root + ASSETS_URL, schema


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get(OPENAPI_URL)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    assets, schema = _urls(request)
    return _local_only(
        get_swagger_ui_html(
            openapi_url=schema,
            title=f"{request.app.title} - API docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    assets, schema = _urls(request)
    return _local_only(
        get_redoc_html(
            openapi_url=schema,
            title=f"{request.app.title} - API reference",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )
    )


def mount(app: FastAPI) -> None:
    """Add the docs routes and their assets (the app is created with FastAPI's own docs off)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    app.include_router(router)
