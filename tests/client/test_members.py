"""Teams from the command line and the client, against a real server whose invitations
go through a real SMTP server: an owner invites a purger, who accepts, switches,
purges and makes a purge-only key but nothing more; then is demoted and removed."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from paradarum_client import AsyncClient, Client, ForbiddenError
from tests.cache import recording_node
from tests.client.conftest import ApiServer, serve
from tests.client.harness import Cli, active_zone, signed_in
from tests.mail import SmtpServer, smtp_server
from tests.support import PASSWORD, signup

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with smtp_server(directory=tmp_path_factory.mktemp("smtp")) as server:
        yield server


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[ApiServer]:
    with recording_node() as node:
        server = serve(
            tmp_path_factory,
            node,
            PARADARUM_SMTP_URL=smtp.url(),
            PARADARUM_PUBLIC_URL="https://panel.example",
            PARADARUM_KEY_LIMIT="10",
        )
        try:
            yield server
        finally:
            server.stop()


def invitation_link_token(smtp: SmtpServer, email: str, timeout: float = 30.0) -> str:
    """The token of the invitation mailed to ``email``, read from the SMTP server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for received in smtp.messages():
            if email in received.rcpt_tos and "invited" in str(received.message["Subject"]):
                text = received.message.get_body(("plain",)).get_content()
                found = re.search(r"https://panel\.example/invitations#token=(\S+)", text)
                assert found, text
                return unquote(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no invitation reached {email}")


def verify_address(url: str, smtp: SmtpServer, email: str, timeout: float = 30.0) -> None:
    """Follow the verification link mailed to ``email`` (read from the SMTP server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for received in smtp.messages():
            if email in received.rcpt_tos and "Confirm" in str(received.message["Subject"]):
                text = received.message.get_body(("plain",)).get_content()
                found = re.search(r"https://panel\.example/verify-email#token=(\S+)", text)
                assert found, text
                verified = httpx.post(
                    f"{url}/api/auth/email/verify", json={"token": unquote(found.group(1))}
                )
                assert verified.status_code == 200, verified.text
                return
        time.sleep(0.1)
    raise AssertionError(f"no verification link reached {email}")


def test_an_invited_purger_purges_and_makes_purge_keys_then_is_demoted_and_removed(
    team_server, smtp, tmp_path
):
    url = team_server.url
    owner = Cli(url, tmp_path / "owner")
    owner_email = signed_in(owner, url)
    hostname = active_zone(team_server, owner_email)
    colleague = f"colleague-{uuid.uuid4().hex[:8]}@example.com"

    # Until the address is verified, nobody can be invited (as no key can be made).
    unverified = owner("members", "invite", colleague, "purger")
    assert unverified.exit_code == 1 and "Verify your email address" in unverified.output
    verify_address(url, smtp, owner_email)
    invited = owner("members", "invite", colleague, "purger")
    assert invited.exit_code == 0, invited.output
    assert f"Invited {colleague} as purger" in invited.output
    assert owner("members", "invite", colleague, "wizard").exit_code == 2
    token = invitation_link_token(smtp, colleague)

    # The colleague signs up, accepts with the client, switches with the CLI.
    with httpx.Client(base_url=url) as http:
        signup(http, colleague)
    them = Cli(url, tmp_path / "colleague")
    assert them("login", input=f"{colleague}\n{PASSWORD}\n").exit_code == 0
    with Client(base_url=url, token="") as anonymous:
        session = anonymous.login(colleague, PASSWORD).token
    with Client(base_url=url, token=session) as client:
        joined = client.accounts.accept_invitation(token)
        team_session = client.accounts.switch(joined.id).token
    assert joined.role == "purger"
    listed = them("accounts", "list")
    assert listed.exit_code == 0 and "purger" in listed.output, listed.output
    switched = them("accounts", "switch", str(joined.id))
    assert switched.exit_code == 0, switched.output
    assert "as purger" in switched.output

    purged = them("purge", f"https://{hostname}/a")
    assert purged.exit_code == 0, purged.output
    made = them("keys", "create", "ci", "--purge-only")
    assert made.exit_code == 0, made.output
    refused = them("keys", "create", "everything")
    assert refused.exit_code == 1
    assert "developer role or above" in refused.output
    assert them("members", "invite", "x@example.com", "viewer").exit_code == 1

    async def listed_async() -> list:
        async with AsyncClient(base_url=url, token=team_session) as client:
            return [(m.email, m.role) for m in await client.members.list()]

    assert (colleague, "purger") in asyncio.run(listed_async())

    members = owner("members", "list")
    assert colleague in members.output and "purger" in members.output
    member_id = next(line.split()[0] for line in members.output.splitlines() if colleague in line)
    demoted = owner("members", "role", member_id, "viewer")
    assert demoted.exit_code == 0 and "is now viewer" in demoted.output, demoted.output
    with Client(base_url=url, token=team_session) as client, pytest.raises(ForbiddenError):
        client.members.invite("y@example.com", "viewer")
    removed = owner("members", "remove", member_id, "--keys", "revoke", "--yes")
    assert removed.exit_code == 0, removed.output
    gone = them("keys", "list")
    assert gone.exit_code == 1  # their session of that account ends at once
    assert owner("members", "list").output.count("@") == 1
