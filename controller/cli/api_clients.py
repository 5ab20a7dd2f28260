"""``adc api client add NAME --scopes ...``: register an integrator for OAuth2 client credentials. The secret is
printed once and kept only as an argon2id hash."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from controller.api.api_clients import SCOPES, add_client, parse_scopes
from controller.bootstrap import build_store, credential_hasher
from controller.settings import Settings
from controller.store import schema

api_app = typer.Typer(help="The REST API: integrator clients.", no_args_is_help=True)
client_app = typer.Typer(help="Integrator clients (OAuth2 client credentials).", no_args_is_help=True)
api_app.add_typer(client_app, name="client")
out = Console()


@client_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The client id (letters, digits, '.', '_', '-').")],
    scopes: Annotated[str, typer.Option(help=f"Space-separated scopes from: {' '.join(sorted(SCOPES))}.")],
) -> None:
    """Create a client and print its secret (shown this once)."""
    settings = Settings()
    granted = parse_scopes(scopes)
    store = build_store(settings)
    try:
        schema.require_current(store.db)
        secret = add_client(store.db, credential_hasher(settings), name, granted, now=store.clock.now())
    finally:
        store.close()
    out.print(f"client_id={name}", markup=False, highlight=False)
    out.print(f"client_secret={secret}", markup=False, highlight=False)
    out.print(f"scopes={' '.join(sorted(granted))}", markup=False, highlight=False)
    out.print("The secret is shown only now; POST it to /oauth/token (grant_type=client_credentials).")
