"""FastAPI dependencies: the services, the authenticated principal, scope checks, paging."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from aimaas.domain import Principal, Scope
from aimaas.errors import Forbidden, InvalidInput
from aimaas.services.container import Services

__all__ = ["Paging", "ServicesDep", "authenticated", "require"]


async def get_services(request: Request) -> Services:  # async: a sync dependency costs a thread hop per request
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def authenticated(request: Request, services: ServicesDep) -> Principal:
    """The caller's principal: from the short-lived authentication cache when possible (no thread, no query),
    else looked up in the store in a worker thread."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" else None
    principal = services.tenants.cached_principal(secret)
    if principal is None:
        principal = await run_in_threadpool(services.tenants.authenticate, secret)
    request.state.principal = principal  # for logging/metrics: ids only, never the secret
    return principal


def require(scope: Scope):  # type: ignore[no-untyped-def]
    """A dependency that authenticates and checks ``scope``."""

    async def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.can(scope):
            raise Forbidden(f"this action needs a key with the '{scope.value}' scope")
        return principal

    return Depends(check)


class Paging:
    """``?limit=&cursor=`` for listings; fetch ``fetch`` items and hand the result to :meth:`page`."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 100,
        cursor: Annotated[str | None, Query(max_length=100, description="next_cursor of the previous page")] = None,
    ) -> None:
        if cursor is not None and not cursor.replace("_", "").isalnum():
            raise InvalidInput("cursor: pass back the next_cursor of the previous page", param="cursor")
        self.limit = limit
        self.cursor = cursor

    @property
    def fetch(self) -> int:
        return self.limit + 1

    def page(self, items: list, convert) -> dict:  # type: ignore[no-untyped-def,type-arg]
        more = len(items) > self.limit
        items = items[: self.limit]
        return {
            "items": [convert(i) for i in items],
            "next_cursor": items[-1].id if more and items else None,
        }


Read = require(Scope.READ)
Write = require(Scope.WRITE)
Admin = require(Scope.ADMIN)
Predict = require(Scope.PREDICT)
