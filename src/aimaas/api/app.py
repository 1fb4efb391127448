"""``create_app(settings, services)``: the FastAPI application, with nothing global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aimaas._version import __version__
from aimaas.api.errors import install_error_handlers
from aimaas.api.middleware import HttpMetrics, RequestContextMiddleware
from aimaas.api.routes import datasets, health, tenants
from aimaas.api.routes.docs import install_docs
from aimaas.config import Settings
from aimaas.services.container import Services

__all__ = ["create_app"]

DESCRIPTION = """Self-hosted AI Model-as-a-Service.

Send your API key as `Authorization: Bearer <key>`. Errors use one envelope:
`{"error": {"message", "type", "code", "param"}}`."""


def create_app(settings: Settings, services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        yield
        app.state.draining = True

    app = FastAPI(
        title="aimaas",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = HttpMetrics(CollectorRegistry())
    app.state.draining = False
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(tenants.router)
    app.include_router(datasets.router)
    install_docs(app, public=settings.public_docs)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app
