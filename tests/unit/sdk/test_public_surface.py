"""Pin the SDK's public names: adding or removing one is a deliberate, reviewed change."""

from __future__ import annotations

import inspect

import aimaas.sdk as sdk
from aimaas.sdk import AsyncClient, Client

EXPORTED = {
    "DEFAULT_URL",
    "AsyncClient",
    "Client",
    "LoginConfig",
    "ProgressCallback",
    "load_login_config",
    "save_login_config",
    "split_ref",
}

RESOURCE_METHODS = {
    "datasets": {
        "upload",
        "list",
        "iter_all",
        "get",
        "versions",
        "version",
        "preview",
        "stats",
        "split",
        "splits",
        "download",
        "download_split",
        "delete",
    },
    "tenants": {"create", "list", "iter_all", "get"},
    "keys": {"create", "list", "iter_all", "revoke"},
    "jobs": {"create", "list", "get", "events", "cancel", "retry", "stream", "wait"},
    "models": {
        "list",
        "iter_all",
        "get",
        "version",
        "card",
        "report",
        "plot",
        "download",
        "set_alias",
        "delete_alias",
        "set_status",
        "delete",
        "compare",
        "import_file",
    },
    "endpoints": {"create", "list", "iter_all", "get", "update", "delete", "predict", "wait_ready"},
}


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_all_is_pinned_and_importable() -> None:
    assert set(sdk.__all__) == EXPORTED
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None


def test_top_level_package_reexports_the_clients() -> None:
    import aimaas

    assert aimaas.Client is Client
    assert aimaas.AsyncClient is AsyncClient


def test_sync_and_async_clients_have_the_same_surface() -> None:
    client = Client("http://127.0.0.1:1", api_key="k")
    aclient = AsyncClient("http://127.0.0.1:1", api_key="k")
    try:
        resources = {"datasets", "tenants", "keys", "jobs", "models", "endpoints"}
        assert _public(client) >= resources | {"train", "deploy", "openai", "whoami", "health", "ready", "close", "url"}
        assert _public(client) <= _public(aclient)
        for resource, methods in RESOURCE_METHODS.items():
            assert _public(getattr(client, resource)) == methods
            assert _public(getattr(aclient, resource)) == methods
            for method in methods - {"iter_all"}:
                amethod = getattr(getattr(aclient, resource), method)
                if method == "stream":
                    assert inspect.isasyncgenfunction(amethod), method
                else:
                    assert inspect.iscoroutinefunction(amethod), method
                sync_sig = inspect.signature(getattr(getattr(client, resource), method))
                async_sig = inspect.signature(amethod)
                if method == "stream":  # the same parameters; Iterator vs AsyncIterator
                    sync_sig, async_sig = (
                        sync_sig.replace(return_annotation=None),
                        async_sig.replace(return_annotation=None),
                    )
                assert sync_sig == async_sig, method
        for method in ("train", "deploy"):
            assert inspect.iscoroutinefunction(getattr(aclient, method)), method
            assert inspect.signature(getattr(client, method)) == inspect.signature(getattr(aclient, method)), method
        # deploy is endpoints.create under a shorter name: the same parameters
        assert inspect.signature(client.deploy) == inspect.signature(client.endpoints.create)
        assert inspect.signature(client.openai) == inspect.signature(aclient.openai)
    finally:
        client.close()


def test_public_classes_have_docstrings() -> None:
    with Client("http://x", api_key="k") as probe:
        for cls in (Client, AsyncClient, type(probe.datasets), type(probe.models), type(probe.endpoints)):
            assert inspect.getdoc(cls)


def test_the_sdk_does_not_import_the_server_side() -> None:
    import subprocess
    import sys

    code = (
        "import sys, aimaas.sdk, aimaas.sdk._async\n"
        # pandas and openai are used only when a caller passes a DataFrame or asks for client.openai()
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', 'uvicorn', 'pandas', 'openai')"
        " or m.startswith(('aimaas.api', 'aimaas.services', 'aimaas.storage', 'aimaas.apps'))]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
