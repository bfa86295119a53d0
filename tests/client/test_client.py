"""paradarum_client against a real running server: no mocked HTTP."""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
import pytest

from paradarum.keys import generate
from paradarum_client import (
    AlreadyRevokedError,
    AsyncClient,
    AuthenticationError,
    Client,
    LimitError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    models,
)
from tests.client.harness import active_zone
from tests.support import PASSWORD, free_port, signup

pytestmark = pytest.mark.slow


def new_email() -> str:
    return f"client-{uuid.uuid4().hex[:10]}@example.com"


def signed_up(url: str) -> str:
    email = new_email()
    with httpx.Client(base_url=url) as http:
        signup(http, email)
    return email


def session_client(server, **options) -> Client:
    """A signed-in client of a new account that has an active zone (to purge)."""
    email = signed_up(server.url)
    active_zone(server, email)
    with Client(base_url=server.url, token="") as anonymous:
        session = anonymous.login(email, PASSWORD)
    return Client(token=session.token, base_url=server.url, **options)


def test_every_sync_method_works_against_a_real_server(api_server, caplog):
    caplog.set_level(logging.DEBUG)
    url = api_server.url
    email = signed_up(url)
    host = active_zone(api_server, email)
    with Client(base_url=url, token="") as anonymous:
        session = anonymous.login(email.upper(), PASSWORD)
    assert session.token not in repr(session)
    with Client(token=session.token, base_url=url) as panel:
        assert panel.account().email == email
        created = panel.keys.create("  deploy script ")
    assert created.name == "deploy script"
    assert created.key.startswith("pdm_") and created.key_prefix == created.key[:8]
    assert created.key not in repr(created)

    with Client(api_key=created.key, base_url=url) as client:
        assert created.key not in repr(client) and "api key" in repr(client)
        account = client.account()
        assert (account.email, account.active_keys, account.key_limit) == (email, 1, 3)
        listed = client.keys.list()
        assert [key.id for key in listed] == [created.id]
        assert listed[0].last_used_at is not None and not listed[0].is_revoked

        by_url = client.purge.urls([f"https://{host}/a", f"https://{host}/b"])
        by_tag = client.purge.tags("product-7")
        everything = client.purge.everything()
        assert (by_url.kind, by_url.targets) == ("urls", [f"https://{host}/a", f"https://{host}/b"])
        assert (by_tag.kind, by_tag.targets) == ("tags", ["product-7"])
        assert (everything.kind, everything.targets) == ("everything", [])

        first = client.purges.list(limit=2)
        assert [p.id for p in first.items] == [everything.id, by_tag.id]
        assert first.next_cursor is not None
        second = client.purges.list(limit=2, cursor=first.next_cursor)
        assert [p.id for p in second.items] == [by_url.id] and second.next_cursor is None
        assert [p.id for p in client.purges.iter(page_size=1)] == [
            everything.id,
            by_tag.id,
            by_url.id,
        ]

        # One model per shape: the client's results are the API's own dataclasses.
        assert type(account) is models.Account and type(created) is models.NewKey
        assert type(listed[0]) is models.ApiKey and type(by_url) is models.Purge
        assert type(session) is models.Session and session.token_type == "Bearer"

        seen = []
        done = client.purges.wait(by_tag.id, timeout=60, interval=0.05, on_update=seen.append)
        assert done.status == "done" and seen[-1] == done
        # Cache nodes are labels: their addresses are the operator's business.
        assert [(n.node, n.status) for n in done.nodes] == [("node-1", "done")]
        assert all(type(node) is models.PurgeNode for node in done.nodes)
        delivered = client.purges.wait(by_url.id, timeout=60, interval=0.05)
        assert [(n.status, n.attempts) for n in delivered.nodes] == [("done", 1)]

        other = client.keys.create("second")
        revoked = client.keys.revoke(other.id)
        assert revoked.is_revoked and revoked.revoked_at is not None
        assert [k.id for k in client.keys.list(status="active")] == [created.id]
        assert [k.id for k in client.keys.list(status="revoked")] == [other.id]

    with Client(token=session.token, base_url=url) as panel:
        panel.logout()
        with pytest.raises(AuthenticationError):
            panel.account()
    assert created.key not in caplog.text and other.key not in caplog.text
    assert session.token not in caplog.text


def test_each_failure_has_its_own_exception(api_server):
    url = api_server.url
    with session_client(api_server) as client:
        with pytest.raises(NotFoundError) as not_found:
            client.purges.get(987654321)
        assert not_found.value.status_code == 404
        with pytest.raises(NotFoundError):
            client.keys.revoke(987654321)

        with pytest.raises(ValidationError) as invalid:
            client.purge.urls(["/relative"])
        assert type(invalid.value) is ValidationError
        assert "urls" in invalid.value.errors
        with pytest.raises(ValidationError) as invalid_name:
            client.keys.create("")
        assert type(invalid_name.value) is ValidationError and "name" in invalid_name.value.errors

        keys = [client.keys.create(f"key {n}") for n in range(3)]
        with pytest.raises(LimitError) as limit:
            client.keys.create("one too many")
        assert "3" in limit.value.message

        client.keys.revoke(keys[0].id)
        with pytest.raises(AlreadyRevokedError):
            client.keys.revoke(keys[0].id)
        revoked = Client(api_key=keys[0].key, base_url=url)
        with revoked, pytest.raises(AuthenticationError) as denied:
            revoked.account()
        assert keys[0].key not in str(denied.value)

    with Client(base_url=url, token="") as anonymous, pytest.raises(AuthenticationError):
        anonymous.account()
    unknown = generate()  # well-formed, but no account has it
    stranger = Client(api_key=unknown, base_url=url)
    with stranger, pytest.raises(AuthenticationError) as wrong_key:
        stranger.purge.everything()
    assert unknown not in str(wrong_key.value)
    closed = f"http://127.0.0.1:{free_port()}"
    nowhere = Client(api_key=unknown, base_url=closed)
    with nowhere, pytest.raises(NetworkError) as unreachable:
        nowhere.account()
    assert unknown[:8] not in str(unreachable.value)
    assert "Cannot reach" in unreachable.value.message


def test_a_client_reads_its_server_and_key_from_the_environment(api_server, monkeypatch):
    with session_client(api_server) as panel:
        key = panel.keys.create("from env").key
    monkeypatch.setenv("PARADARUM_URL", api_server.url)
    monkeypatch.setenv("PARADARUM_API_KEY", key)
    with Client() as client:
        assert client.base_url == api_server.url
        assert client.account().active_keys == 1
        assert key not in repr(client)


class RetryAfters(httpx.HTTPTransport):
    """The real transport, noting the ``Retry-After`` of every ``429`` it brings back."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if response.status_code == 429:
            self.seen.append(float(response.headers["Retry-After"]))
        return response


class AsyncRetryAfters(httpx.AsyncHTTPTransport):
    """:class:`RetryAfters` for the async client."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if response.status_code == 429:
            self.seen.append(float(response.headers["Retry-After"]))
        return response


def test_a_429_is_retried_after_retry_after_then_raised(limited_server):
    waits: list[float] = []
    answers = RetryAfters()
    options = {"max_retries": 2, "max_retry_wait": 10**11, "sleep": waits.append}
    with session_client(limited_server, transport=answers, **options) as client:
        client.purge.everything()
        with pytest.raises(RateLimitedError) as limited:
            client.purge.tags("t")
    # Three tries: the first and two retries, each after the Retry-After it answered.
    assert len(answers.seen) == 3
    assert waits == answers.seen[:2]
    assert all(wait >= 1 for wait in waits)
    assert limited.value.status_code == 429
    assert limited.value.retry_after == answers.seen[2]


def test_a_429_is_retried_until_the_window_passes(strict_server):
    with session_client(strict_server) as client:
        first = client.purge.everything()
        second = client.purge.everything()  # waits out the Retry-After, then succeeds
    assert second.id > first.id


def test_a_retry_after_longer_than_the_client_will_wait_is_raised_at_once(limited_server):
    waits: list[float] = []
    answers = RetryAfters()
    options = {"max_retries": 5, "max_retry_wait": 10**9, "sleep": waits.append}
    with session_client(limited_server, transport=answers, **options) as client:
        client.purge.everything()
        with pytest.raises(RateLimitedError) as limited:
            client.purge.everything()
    assert waits == []
    assert len(answers.seen) == 1 and answers.seen[0] > 10**9
    assert limited.value.retry_after == answers.seen[0]


def test_a_sign_in_refused_after_failures_is_raised_at_once_not_retried(api_server):
    """Retrying it would only send the same (wrong) password once more."""
    email = signed_up(api_server.url)
    waits: list[float] = []
    options = {"sleep": waits.append, "max_retry_wait": 10**9}  # any wait would be taken
    with Client(base_url=api_server.url, token="", **options) as client:
        for _ in range(3):  # the server's limit for these tests
            with pytest.raises(AuthenticationError):
                client.login(email, "wrong password!")
        with pytest.raises(RateLimitedError) as limited:
            client.login(email, "wrong password!")
    assert waits == [] and limited.value.retry_after


def test_every_async_method_works_against_a_real_server(api_server):
    url = api_server.url
    email = signed_up(url)
    host = active_zone(api_server, email)

    async def scenario() -> None:
        async with AsyncClient(base_url=url, token="") as anonymous:
            session = await anonymous.login(email, PASSWORD)
        async with AsyncClient(token=session.token, base_url=url) as panel:
            assert (await panel.account()).email == email
            created = await panel.keys.create("async")
        async with AsyncClient(api_key=created.key, base_url=url) as client:
            assert created.key not in repr(client)
            assert [k.id for k in await client.keys.list()] == [created.id]
            by_url = await client.purge.urls(f"https://{host}/async")
            by_tag = await client.purge.tags(["a", "b"])
            everything = await client.purge.everything()
            page = await client.purges.list(limit=2)
            assert [p.id for p in page.items] == [everything.id, by_tag.id]
            assert [p.id async for p in client.purges.iter(page_size=2)] == [
                everything.id,
                by_tag.id,
                by_url.id,
            ]
            done = await client.purges.wait(by_url.id, timeout=60, interval=0.05)
            assert done.status == "done" and done.nodes[0].status == "done"
            assert (await client.purges.get(by_tag.id)).kind == "tags"
            with pytest.raises(NotFoundError):
                await client.purges.get(987654321)
            other = await client.keys.create("other")
            assert (await client.keys.revoke(other.id)).is_revoked
            with pytest.raises(AlreadyRevokedError):
                await client.keys.revoke(other.id)
        async with AsyncClient(token=session.token, base_url=url) as panel:
            await panel.logout()
            with pytest.raises(AuthenticationError):
                await panel.account()

    asyncio.run(scenario())


def test_async_429_is_retried_then_raised(limited_server):
    email = signed_up(limited_server.url)
    active_zone(limited_server, email)
    waits: list[float] = []
    answers = AsyncRetryAfters()

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def scenario() -> float | None:
        async with AsyncClient(base_url=limited_server.url, token="") as anonymous:
            token = (await anonymous.login(email, PASSWORD)).token
        async with AsyncClient(
            token=token,
            base_url=limited_server.url,
            max_retries=1,
            max_retry_wait=10**11,
            transport=answers,
            sleep=record,
        ) as client:
            await client.purge.everything()
            with pytest.raises(RateLimitedError) as limited:
                await client.purge.everything()
        return limited.value.retry_after

    last = asyncio.run(scenario())
    # Two tries: the first and one retry, after the Retry-After it answered.
    assert len(answers.seen) == 2
    assert waits == answers.seen[:1]
    assert last == answers.seen[1]
