"""What the command line says when a command ends otherwise than planned: the commands to
run (not the API's routes), nothing at all for a reader that went away, and an empty list
of cache nodes (never None) from every client method."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import httpx

from paradarum import errors
from paradarum.services import purges
from paradarum_client import Client
from paradarum_client.command import ROUTE_COMMANDS, for_the_command_line
from tests.client.harness import Cli, active_zone, signed_in
from tests.support import login, signup

SERVER_SENTENCES_WITH_ROUTES = [
    purges.NO_ZONE,
    errors.NotYourHosts(["www.example.com"]).message,
    errors.EmailNotVerified.message,
    errors.NotASession.message,
    "No zone 7 in your account (GET /api/account/zones lists them).",
]


def test_every_route_the_server_names_is_a_command_on_the_command_line():
    for sentence in SERVER_SENTENCES_WITH_ROUTES:
        assert "/api/" in sentence, sentence  # the server still speaks of routes
        said = for_the_command_line(sentence)
        assert "/api/" not in said, said
    assert "`paradarum zones add HOSTNAME`" in for_the_command_line(purges.NO_ZONE)
    assert all("/api/" not in command for command in ROUTE_COMMANDS.values())


def test_a_purge_without_zones_names_the_command_that_adds_one(api_server, tmp_path):
    cli = Cli(api_server.url, tmp_path / "config")
    signed_in(cli, api_server.url)
    result = cli("purge", "--everything")
    assert result.exit_code == 1
    assert "paradarum zones add HOSTNAME" in result.output
    assert "/api/" not in result.output


CLOSED_PIPE = """
import typer
from paradarum_client.command import reported

app = typer.Typer()

@app.command()
@reported
def listing():
    raise BrokenPipeError(32, "Broken pipe")

app()
"""


def test_a_reader_that_went_away_ends_the_command_quietly():
    done = subprocess.run(
        [sys.executable, "-c", CLOSED_PIPE], capture_output=True, text=True, timeout=60
    )
    assert done.stderr == "" and done.stdout == ""
    assert done.returncode == 128 + signal.SIGPIPE


def test_purge_nodes_is_an_empty_list_from_every_client_method(nodeless_server):
    email = f"nodes-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=nodeless_server.url) as http:
        signup(http, email)
        token = login(http, email)
    active_zone(nodeless_server, email)
    with Client(token=token, base_url=nodeless_server.url) as client:
        made = client.purge.everything()
        assert made.nodes == []
        assert [purge.nodes for purge in client.purges.list().items] == [[]]
        assert client.purges.get(made.id).nodes == []
        assert client.purges.wait(made.id, timeout=10).nodes == []
