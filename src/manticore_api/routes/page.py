"""The web page (``/`` and ``/static``, see docs/web.md) and the Swagger UI at ``/docs`` with its
script and styles served by this server (the machines running it may have no internet; the assets come
from the ``fastapi-swagger`` package)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

__all__ = ["PAGE_HEADERS", "STATIC", "docs_router", "mount_docs_assets", "mount_static", "router"]

STATIC = Path(__file__).parent.parent / "static"
# The page runs only its own scripts and talks only to this server (its session token lives in
# sessionStorage, so no injected script may run next to it).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

docs_router = APIRouter()
router = APIRouter()


def mount_docs_assets(app: FastAPI) -> None:
    """Serve the Swagger UI's files at ``/docs-assets``."""
    assets = resources.files("fastapi_swagger") / "resources"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")


@docs_router.get("/docs", include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - docs",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/docs-assets/favicon-32x32.png",
    )


@router.get("/", include_in_schema=False, response_model=None)
async def index() -> Response:
    page = STATIC / "index.html"
    if page.exists():
        return FileResponse(page, headers=PAGE_HEADERS)
    return JSONResponse({"name": "Manticore", "docs": "/docs", "api": "/api/markets"})


def mount_static(app: FastAPI) -> None:
    """Serve the page's scripts and styles at ``/static`` (when the package has them)."""
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
