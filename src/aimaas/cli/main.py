"""The ``aimaas`` command: start the server, log in, and manage tenants, keys, datasets, jobs, training, models,
endpoints and predictions over the SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aimaas.cli import admin, datasets, endpoints, jobs, models, train
from aimaas.cli._common import AimaasGroup, State, client, err_console, fail, out_console, print_json

__all__ = ["app", "main"]

app = typer.Typer(
    cls=AimaasGroup,
    name="aimaas",
    help="aimaas: a self-hosted AI Model-as-a-Service platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(datasets.app, name="datasets")
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.command("train")(train.train)
app.command("deploy")(endpoints.deploy)
app.add_typer(endpoints.app, name="endpoints")
app.command("predict")(endpoints.predict)
app.add_typer(admin.tenants_app, name="tenants")
app.add_typer(admin.keys_app, name="keys")

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Server URL (else AIMAAS_URL, else the one saved by `aimaas login`, else local)."),
]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", help="API key (else AIMAAS_API_KEY, else the one saved by `aimaas login`).")
]


@app.callback()
def _root(ctx: typer.Context, url: UrlOption = None, api_key: KeyOption = None) -> None:
    """Self-hosted AI Model-as-a-Service: data, training, registry and serving in one server."""
    ctx.obj = State(url=url, api_key=api_key)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (else AIMAAS_HOST, else 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (else AIMAAS_PORT, else 8000).")] = None,
    home: Annotated[
        Path | None, typer.Option(help="Data folder: database, artifacts (else AIMAAS_HOME, else ~/.aimaas).")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo datasets at start.")] = False,
) -> None:
    """Start the aimaas server (API and web console) in the foreground."""
    from pydantic import ValidationError

    from aimaas.config import Settings

    overrides: dict[str, Any] = {"host": host, "port": port, "home": home}
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"invalid setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    from aimaas.apps.server import serve as run_server

    run_server(settings, demo=demo)


@app.command()
def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="Server URL (default: --url / AIMAAS_URL / local).")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key (asked for when omitted).")] = None,
) -> None:
    """Check a URL and key with the server, then save them (mode 0600) for later commands."""
    from aimaas.config import ClientSettings
    from aimaas.sdk import DEFAULT_URL, Client, LoginConfig, save_login_config

    state = ctx.find_object(State) or State()
    env = ClientSettings()
    server = url or state.url or env.url or DEFAULT_URL
    key = api_key or state.api_key or typer.prompt("API key", hide_input=True)
    with Client(server, key) as checking:
        me = checking.whoami()
        server = checking.url
    path = save_login_config(env.config, LoginConfig(url=server, api_key=key))
    out_console().print(
        f"Logged in to {server} as key '{me.key.name}' ({', '.join(me.key.scopes)}) "
        f"of tenant '{me.tenant.name}'; saved to {path}",
        markup=False,
    )


@app.command()
def logout() -> None:
    """Forget the saved login (the key itself stays valid; revoke it with `aimaas keys revoke`)."""
    from aimaas.config import ClientSettings

    path = ClientSettings().config
    if path.exists():
        path.unlink()
        out_console().print(f"Logged out: removed {path}", markup=False)
    else:
        err_console().print(f"Not logged in (no {path})", markup=False)


@app.command()
def whoami(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the server, tenant and key in use."""
    c = client(ctx)
    me = c.whoami()
    if as_json:
        print_json(me.model_dump(mode="json") | {"url": c.url})
        return
    console = out_console()
    console.print(f"server: {c.url}", markup=False)
    console.print(f"tenant: {me.tenant.name} ({me.tenant.id})", markup=False)
    console.print(f"key:    {me.key.name} ({me.key.prefix}…, id {me.key.id})", markup=False)
    console.print(f"scopes: {', '.join(me.key.scopes)}", markup=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
