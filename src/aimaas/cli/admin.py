"""``aimaas tenants …`` and ``aimaas keys …``: administration (needs an admin key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from aimaas.cli._common import client, err_console, out_console, print_json, table

__all__ = ["keys_app", "tenants_app"]

tenants_app = typer.Typer(help="Tenants (operator admin key).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (admin key).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@tenants_app.command("create")
def tenants_create(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Create a tenant (lower-case letters, digits, '.', '_' or '-')."""
    tenant = client(ctx).tenants.create(name)
    if as_json:
        print_json(tenant)
    else:
        out_console().print(f"Created tenant {tenant.name} ({tenant.id})", markup=False)


@tenants_app.command("list")
def tenants_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every tenant."""
    tenants = list(client(ctx).tenants.iter_all())
    if as_json:
        print_json(tenants)
        return
    rows = [(t.name, t.id, t.created_at) for t in tenants]
    out_console().print(table("Tenants", ["name", "id", "created"], rows))


def _parse_expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2030-01-31T12:00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "key",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="admin, write, read or predict; repeat for several (default: read)."),
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="ISO 8601 expiry time (UTC when no zone is given).")
    ] = None,
    tenant_id: Annotated[
        str | None, typer.Option("--tenant-id", help="Create it in another tenant (operator admin).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key. The secret is printed once, on stdout; store it now."""
    expiry = _parse_expiry(expires_at)
    created = client(ctx).keys.create(name=name, scopes=scope or ["read"], expires_at=expiry, tenant_id=tenant_id)
    if as_json:
        print_json(created)
    else:
        err_console().print(
            f"Created key '{created.name}' (id {created.id}, tenant {created.tenant_id}, "
            f"scopes {', '.join(created.scopes)})",
            markup=False,
        )
        out_console().print(created.key, markup=False)
    err_console().print("[bold yellow]warning:[/] copy this key now: it will not be shown again.")


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="Another tenant's keys.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List API keys (never their secrets)."""
    found = list(client(ctx).keys.iter_all(tenant_id))
    if as_json:
        print_json(found)
        return
    rows = [(k.id, k.name, f"{k.prefix}…", k.scopes, k.created_at, k.expires_at, k.revoked_at) for k in found]
    columns = ["id", "name", "prefix", "scopes", "created", "expires", "revoked"]
    out_console().print(table("API keys", columns, rows))


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: str,
    tenant_id: Annotated[str | None, typer.Option("--tenant-id", help="The key's tenant, if not yours.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: it stops working at once."""
    revoked = client(ctx).keys.revoke(key_id, tenant_id=tenant_id)
    if as_json:
        print_json(revoked)
    else:
        out_console().print(f"Revoked key '{revoked.name}' ({revoked.id})", markup=False)
