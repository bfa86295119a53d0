"""Webhooks and the audit export from the command line and the client, against a real
server whose allowed-networks setting admits loopback endpoints."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paradarum_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from tests.cache import recording_node
from tests.client.conftest import ApiServer, serve
from tests.client.harness import KEY, Cli, signed_in
from tests.support import PASSWORD, signup
from tests.webhooks import Receiver, Request, receiver

pytestmark = pytest.mark.slow

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
# Endpoints are checked when they are saved (a loopback address is admitted by the
# server's setting); nothing listens there.
ENDPOINT = "http://127.0.0.1:9/hooks"


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with recording_node() as node:
        server = serve(
            tmp_path_factory,
            node,
            PARADARUM_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
            PARADARUM_KEY_LIMIT="10",
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def received(hooks: Receiver, count: int = 1, timeout: float = 30.0) -> list[Request]:
    """The requests that reached the receiver, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = hooks.requests()
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} requests reached the receiver: {hooks.requests()}")


def session_of(url: str) -> str:
    email = f"client-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url) as http:
        signup(http, email)
    with Client(base_url=url, token="") as anonymous:
        return anonymous.login(email, PASSWORD).token


def test_from_the_command_line_an_endpoint_is_added_with_its_secret_shown_once_and_managed(
    hook_server, tmp_path
):
    cli = Cli(hook_server.url, tmp_path)
    signed_in(cli, hook_server.url)

    created = cli("webhooks", "create", ENDPOINT, "--event", "api_key.revoked")
    assert created.exit_code == 0, created.output
    [secret] = SECRET.findall(created.output)
    assert "This is the only time the signing secret is shown" in created.output
    webhook_id = re.search(r"Added webhook endpoint (\d+)", created.output).group(1)  # type: ignore[union-attr]
    listed = cli("webhooks", "list")
    assert listed.exit_code == 0 and ENDPOINT in listed.output and "enabled" in listed.output
    assert "whsec_" not in listed.output

    made = cli("keys", "create", "ci")
    key_id = re.search(r"Created API key (\d+)", made.output).group(1)  # type: ignore[union-attr]
    raw_key = KEY.search(made.output).group()  # type: ignore[union-attr]
    assert cli("keys", "revoke", key_id, "--yes").exit_code == 0
    log = cli("webhooks", "deliveries", webhook_id)
    assert log.exit_code == 0 and "api_key.revoked" in log.output and "queued" in log.output
    [logged] = json.loads(cli("webhooks", "deliveries", webhook_id, "--json").output)
    assert logged["payload"]["data"]["id"] == int(key_id)
    assert raw_key not in json.dumps(logged)

    resent = cli("webhooks", "resend", webhook_id, str(logged["id"]))
    assert resent.exit_code == 0, resent.output
    assert f"Delivery {logged['id']} (api_key.revoked) is sent again as delivery" in resent.output
    again = json.loads(cli("webhooks", "deliveries", webhook_id, "--json").output)
    assert [d["messageId"] for d in again] == [logged["messageId"]] * 2

    changed = cli("webhooks", "update", webhook_id, "-e", "api_key.leaked", "--disable")
    assert changed.exit_code == 0, changed.output
    assert "is disabled" in changed.output and "Events: api_key.leaked." in changed.output
    assert cli("webhooks", "update", webhook_id).exit_code == 2  # nothing to change

    rolled = cli("webhooks", "roll-secret", webhook_id, "--grace", "0")
    assert rolled.exit_code == 0, rolled.output
    [new_secret] = SECRET.findall(rolled.output)
    assert new_secret != secret and "The previous secret no longer signs" in rolled.output
    kept = cli("webhooks", "roll-secret", webhook_id)  # the server's default: a day
    assert "signed with the previous secret too until" in kept.output, kept.output
    assert cli("webhooks", "roll-secret", webhook_id, "--grace", "8d").exit_code == 2

    deleted = cli("webhooks", "delete", webhook_id, "--yes")
    assert deleted.exit_code == 0 and f"Deleted webhook endpoint {webhook_id}" in deleted.output
    gone = cli("webhooks", "deliveries", webhook_id)
    assert gone.exit_code == 1
    assert gone.output.startswith("Error: ") and gone.output.count("\n") == 1, gone.output


def test_a_mistyped_event_or_a_private_address_is_refused_in_one_line(hook_server, tmp_path):
    cli = Cli(hook_server.url, tmp_path)
    signed_in(cli, hook_server.url)
    refused = cli("webhooks", "create", ENDPOINT, "--event", "api_key.revokd")
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: Not an event: 'api_key.revokd'. Events: ")
    assert "api_key.revoked" in refused.output and "Traceback" not in refused.output
    private = cli("webhooks", "create", "http://10.1.2.3/hooks", "-e", "api_key.created")
    assert private.exit_code == 1 and private.output.startswith("Error: "), private.output
    assert "private" in private.output
    assert "10.1.2.3" not in cli("webhooks", "list").output


def test_audit_export_prints_the_security_log_as_ndjson_oldest_first(hook_server, tmp_path):
    cli = Cli(hook_server.url, tmp_path)
    signed_in(cli, hook_server.url)
    for name in ("first", "second"):
        assert cli("keys", "create", name).exit_code == 0

    exported = cli("audit", "export", "--since", "1h")
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.output.splitlines()]
    assert [line["occurredAt"] for line in lines] == sorted(line["occurredAt"] for line in lines)
    assert [line["event"] for line in lines].count("key.created") == 2
    assert {"id", "event", "occurredAt", "actor"} <= set(lines[0])

    later = cli("audit", "export", "--since", "2999-01-01T00:00:00Z")
    assert later.exit_code == 0 and later.output == ""
    wrong = cli("audit", "export", "--since", "yesterday")
    assert wrong.exit_code == 2 and "RFC 3339" in wrong.output


def test_the_client_manages_endpoints_and_keys_may_not_say_where_events_go(hook_server):
    url = hook_server.url
    with Client(base_url=url, token=session_of(url)) as client:
        created = client.webhooks.create(ENDPOINT, events=["api_key.created"])
        assert created.secret.startswith("whsec_") and "whsec_" not in repr(created)
        assert [w.id for w in client.webhooks.list()] == [created.id]
        assert client.webhooks.get(created.id).events == ["api_key.created"]

        for name in ("first", "second"):
            client.keys.create(name)
        page = client.webhooks.deliveries(created.id, limit=1)
        assert len(page.items) == 1 and page.next_cursor is not None
        every = list(client.webhooks.iter_deliveries(created.id, page_size=1))
        assert [d.payload["data"]["name"] for d in every] == ["second", "first"]
        again = client.webhooks.resend(created.id, every[-1].id)
        assert again.id not in {d.id for d in every}
        assert again.message_id == every[-1].message_id

        rolled = client.webhooks.roll_secret(created.id, grace=timedelta(hours=1))
        assert rolled.secret != created.secret
        assert rolled.previous_secret_expires_at is not None
        assert rolled.previous_secret_expires_at > datetime.now(UTC) + timedelta(minutes=55)

        updated = client.webhooks.update(created.id, events=["api_key.revoked"])
        assert (updated.events, updated.enabled) == (["api_key.revoked"], True)
        assert client.webhooks.update(created.id, enabled=False).enabled is False
        with pytest.raises(ValidationError, match="enable it first"):
            client.webhooks.resend(created.id, every[-1].id)
        with pytest.raises(ValidationError) as refused:
            client.webhooks.create(ENDPOINT, events=["api_key.nope"])
        assert "events" in refused.value.errors
        with pytest.raises(ValidationError):
            client.webhooks.roll_secret(created.id, grace=timedelta(days=8))

        # A key may list and pause endpoints, but not say where events go.
        minted = client.keys.create("automation")
        with Client(minted.key, base_url=url) as keyed:
            assert [w.id for w in keyed.webhooks.list()] == [created.id]
            assert keyed.webhooks.update(created.id, enabled=True).enabled is True
            with pytest.raises(ForbiddenError):
                keyed.webhooks.create(ENDPOINT, events=["api_key.created"])
            with pytest.raises(ForbiddenError):
                keyed.webhooks.roll_secret(created.id)

        assert client.webhooks.delete(created.id).id == created.id
        with pytest.raises(NotFoundError):
            client.webhooks.get(created.id)


def test_the_audit_export_is_an_iterator_of_entries_in_both_clients(hook_server):
    url = hook_server.url
    token = session_of(url)
    start = datetime.now(UTC) - timedelta(minutes=5)
    with Client(base_url=url, token=token) as client:
        key = client.keys.create("exported")
        client.keys.revoke(key.id)
        entries = client.audit.export(since=start)
        assert not isinstance(entries, list)  # handed out as they arrive
        events = list(entries)
        names = [e.event for e in events]
        assert names.index("key.created") < names.index("key.revoked")
        assert all(e.occurred_at >= start for e in events)
        assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
        assert list(client.audit.export(since=datetime.now(UTC) + timedelta(days=1))) == []
    with Client(key.key, base_url=url) as revoked, pytest.raises(AuthenticationError):
        list(revoked.audit.export())

    async def exported() -> tuple[list[str], list[int]]:
        async with AsyncClient(base_url=url, token=token) as client:
            streamed = [e.event async for e in client.audit.export(since=start)]
            created = await client.webhooks.create(ENDPOINT, events=["api_key.created"])
            await client.keys.create("async")
            deliveries = [d.id async for d in client.webhooks.iter_deliveries(created.id)]
            return streamed, deliveries

    streamed, deliveries = asyncio.run(exported())
    # Oldest first from the same moment: what came since only adds to the end.
    assert streamed[: len(names)] == names
    assert len(deliveries) == 1


def test_a_revoked_key_reaches_the_receiver_signed_and_the_log_says_delivered(
    hook_server, hooks, tmp_path
):
    cli = Cli(hook_server.url, tmp_path)
    signed_in(cli, hook_server.url)
    created = cli("webhooks", "create", hooks.url, "-e", "api_key.revoked")
    [secret] = SECRET.findall(created.output)
    webhook_id = re.search(r"Added webhook endpoint (\d+)", created.output).group(1)  # type: ignore[union-attr]
    made = cli("keys", "create", "ci")
    key_id = re.search(r"Created API key (\d+)", made.output).group(1)  # type: ignore[union-attr]
    raw_key = KEY.search(made.output).group()  # type: ignore[union-attr]
    assert cli("keys", "revoke", key_id, "--yes").exit_code == 0

    [delivery] = received(hooks)
    event = Webhook(secret).verify(delivery.body, delivery.headers)
    assert event["type"] == "api_key.revoked" and event["data"]["id"] == int(key_id)
    assert raw_key not in delivery.body.decode() and not KEY.search(delivery.body.decode())

    deadline = time.monotonic() + 30
    while True:  # the receiver answered before the server recorded its answer
        [logged] = json.loads(cli("webhooks", "deliveries", webhook_id, "--json").output)
        if logged["status"] != "queued" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (logged["status"], logged["attempts"], logged["responseStatus"]) == ("delivered", 1, 204)
    assert logged["messageId"] == delivery.headers["webhook-id"]
    table = cli("webhooks", "deliveries", webhook_id).output
    assert "delivered" in table and "204" in table

    assert cli("webhooks", "resend", webhook_id, str(logged["id"])).exit_code == 0
    first, again = received(hooks, count=2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] and again.body == first.body
    Webhook(secret).verify(again.body, again.headers)


def test_both_secrets_sign_during_a_rolls_grace_and_only_the_new_one_after_a_roll_now(
    hook_server, hooks
):
    with Client(base_url=hook_server.url, token=session_of(hook_server.url)) as client:
        created = client.webhooks.create(hooks.url, events=["api_key.created"])
        rolled = client.webhooks.roll_secret(created.id, grace=timedelta(hours=1))
        client.keys.create("during the grace")
        [during] = received(hooks)
        for secret in (created.secret, rolled.secret):
            Webhook(secret).verify(during.body, during.headers)

        final = client.webhooks.roll_secret(created.id, grace=0)
        assert final.previous_secret_expires_at is None
        client.keys.create("after")
        after = received(hooks, count=2)[1]
        Webhook(final.secret).verify(after.body, after.headers)
        for old in (created.secret, rolled.secret):
            with pytest.raises(WebhookVerificationError):
                Webhook(old).verify(after.body, after.headers)
