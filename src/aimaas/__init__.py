"""aimaas: a self-hosted AI Model-as-a-Service platform.

The public client surface is re-exported here: ``from aimaas import Client, AsyncClient``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aimaas._version import __version__

__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from aimaas.sdk import AsyncClient, Client


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. by the server) must not pull in the SDK's dependencies.
    if name in ("Client", "AsyncClient"):
        from aimaas import sdk

        return getattr(sdk, name)
    raise AttributeError(name)
