"""``create_app(settings, services)``: the FastAPI application, with nothing global."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aimaas._version import __version__
from aimaas.api.errors import install_error_handlers
from aimaas.api.middleware import HttpMetrics, RequestContextMiddleware
from aimaas.api.routes import datasets, endpoints, health, jobs, models, openai, tenants, train
from aimaas.api.routes.docs import install_docs
from aimaas.config import Settings
from aimaas.services.container import Services

__all__ = ["JOB_TICK_S", "create_app", "run_job_loop"]

log = logging.getLogger("aimaas.jobs")

#: Seconds between two job-queue reconcile steps (``JobService.tick``).
JOB_TICK_S = 0.25

DESCRIPTION = """Self-hosted AI Model-as-a-Service.

Send your API key as `Authorization: Bearer <key>`. Errors use one envelope:
`{"error": {"message", "type", "code", "param"}}`."""


def create_app(settings: Settings, services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        await asyncio.to_thread(services.jobs.recover)
        loop = asyncio.create_task(run_job_loop(services, JOB_TICK_S), name="aimaas-job-loop")
        await services.endpoints.controller.start()
        try:
            yield
        finally:
            app.state.draining = True
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await services.endpoints.controller.stop()
            await asyncio.to_thread(services.jobs.close)  # running jobs end failed; last events stored

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
    app.include_router(jobs.router)
    app.include_router(train.router)
    app.include_router(models.router)
    app.include_router(endpoints.router)
    app.include_router(openai.router)
    install_docs(app, public=settings.public_docs)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app


async def run_job_loop(services: Services, interval: float) -> None:
    """Call ``services.jobs.tick()`` in a worker thread every ``interval`` seconds until cancelled.

    The event loop never blocks on the store or the executor; an error is logged and the loop goes on.
    """
    while True:
        try:
            await asyncio.to_thread(services.jobs.tick)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one bad tick must not stop the queue
            log.exception("job loop tick failed; retrying")
        await asyncio.sleep(interval)
