"""One error handler: every failure leaves the API as ``{"error": {message, type, code, param}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aimaas.errors import AimaasError, error_class_for

__all__ = ["install_error_handlers"]

log = logging.getLogger("aimaas.api")

_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def _envelope(exc: AimaasError, request: Request) -> JSONResponse:
    headers = dict(exc.headers)
    return JSONResponse(exc.to_body(), status_code=exc.http_status, headers=headers)


async def _aimaas_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AimaasError)
    if exc.http_status >= 500:
        log.warning("request %s failed: %s", request.state.request_id, exc.code)
    return _envelope(exc, request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if str(p) not in _LOCATIONS]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid request"))
    if param:
        message = f"{param}: {message}"
    err = error_class_for(422)(message, code="invalid_input", param=param)
    return _envelope(err, request)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        message = f"no route {request.method} {request.url.path}; see /docs for the API"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    err = error_class_for(status)(message, code={404: "route_not_found", 405: "method_not_allowed"}.get(status))
    response = _envelope(err, request)
    response.status_code = status
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    log.exception("unhandled error in request %s", request_id)
    err = AimaasError(f"internal error; report request id {request_id} to the operator")
    return _envelope(err, request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AimaasError, _aimaas_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
