"""The server's ``paradarum`` is the customer's app plus the operator's commands, and an
operator variant can take a customer command's place without losing the customer's case."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from paradarum import cli as server_cli
from paradarum_client import cli as customer_cli
from tests.client.harness import Cli, signed_in

runner = CliRunner()


def command_names(app: typer.Typer) -> set[str]:
    group = typer.main.get_group(app)
    names = set()
    for name, command in group.commands.items():
        names.add(name)
        for child in getattr(command, "commands", {}):
            names.add(f"{name} {child}")
    return names


def test_the_servers_app_is_the_customers_app_plus_the_operators_commands():
    customer = command_names(customer_cli.build_app())
    server = command_names(server_cli.build_app())
    assert customer >= {"login", "logout", "keys create", "keys list", "keys revoke", "purge"}
    assert customer >= {"purges list", "purges show", "scan", "keys roll", "keys usage"}
    assert customer >= {"zones add", "zones list", "zones verify", "zones delete"}
    assert customer >= {"webhooks create", "webhooks deliveries", "webhooks resend", "audit export"}
    # The operator's zones add and zones list take the customer's places.
    assert server - customer == {
        "serve",
        "jobs",
        "db",
        "db upgrade",
        "accounts create",
        "accounts delete",
        "accounts reset-password",
    }
    # A customer's `accounts` lists and switches the accounts they belong to.
    assert customer >= {"accounts list", "accounts switch"}
    assert not customer & {"serve", "jobs", "db", "accounts create", "accounts delete"}


def test_building_an_app_twice_gives_two_independent_apps():
    first, second = customer_cli.build_app(), customer_cli.build_app()
    customer_cli.group(first, "keys").command("extra")(lambda: None)
    assert "keys extra" in command_names(first)
    assert "keys extra" not in command_names(second)


def operator_keys_create(
    first: Annotated[str, typer.Argument(metavar="[EMAIL] NAME")],
    name: Annotated[str | None, typer.Argument(metavar="", show_default=False)] = None,
    operator: Annotated[bool, typer.Option("--operator", help="For EMAIL's account.")] = False,
    as_json: customer_cli.AsJson = False,
    url: customer_cli.ServerUrl = None,
) -> None:
    """Create an API key (with --operator: EMAIL NAME, for that account)."""
    if operator:
        typer.echo(f"operator path: {first} {name}")
        return
    customer_cli.keys_create(name=first, as_json=as_json, url=url)


@pytest.mark.slow
def test_an_operator_variant_replaces_a_customer_command_and_keeps_its_customer_case(
    api_server, tmp_path
):
    app = customer_cli.build_app()
    keys = customer_cli.group(app, "keys")
    customer_cli.replace_command(keys, "create", operator_keys_create)
    assert [info.name for info in keys.registered_commands] == [
        "create",
        "list",
        "roll",
        "usage",
        "revoke",
    ]

    cli = Cli(api_server.url, tmp_path / "config")
    cli.app = app
    signed_in(cli, api_server.url)
    operator = cli("keys", "create", "ops@example.com", "deploys", "--operator")
    assert operator.exit_code == 0 and "operator path: ops@example.com deploys" in operator.output
    customer = cli("keys", "create", "deploys")
    assert customer.exit_code == 0, customer.output
    assert "This is the only time the key is shown" in customer.output
    # Client errors in the variant are reported like everywhere else: one line.
    blank = cli("keys", "create", " ")
    assert blank.exit_code == 1 and blank.output.startswith("Error: ")

    with pytest.raises(LookupError):
        customer_cli.replace_command(keys, "nonexistent", operator_keys_create)
    with pytest.raises(LookupError):
        customer_cli.group(app, "nonexistent")
