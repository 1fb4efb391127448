"""OpenAPI document and the interactive docs, behind a key like every other route.

Set ``AIMAAS_PUBLIC_DOCS=true`` to serve them without a key (the API's shape is not a secret, but the
default is closed: every route except the probes needs a key).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from aimaas.api.deps import authenticated

__all__ = ["install_docs"]


def install_docs(app: FastAPI, public: bool) -> None:
    dependencies = [] if public else [Depends(authenticated)]
    router = APIRouter(include_in_schema=False, dependencies=dependencies)

    @router.get("/openapi.json")
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="aimaas API")

    app.include_router(router)
