"""The notification outbox against a real SMTP server: it survives a restart with the
mail server down and then delivers once; email verification gates keys and zones;
expiry reminders go out once each. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from starlette.testclient import TestClient

from paradarum.clock import FrozenClock
from paradarum.db.tables import accounts, notifications
from paradarum.passwords import Passwords
from paradarum.runtime import build_mailer, build_runtime
from paradarum.services.context import ClientInfo
from paradarum.services.emails import Emails, Kind, enqueue
from paradarum.services.jobs import JobQueue
from paradarum.web.app import create_app
from tests.conftest import make_settings
from tests.mail import SmtpServer, smtp_server, unused_port
from tests.support import (
    PASSWORD,
    PeerFromHeader,
    bearer,
    create_key,
    login,
    new_account,
    signup,
    wait_until,
)

CLIENT = ClientInfo(address="192.0.2.1")

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(directory=tmp_path / "smtp") as server:
        yield server


def to(smtp: SmtpServer, email: str, subject: str) -> list:
    return [
        received.message
        for received in smtp.messages()
        if email in received.rcpt_tos and subject in str(received.message["Subject"])
    ]


def statuses(runtime) -> list[str]:
    with runtime.db.reading() as conn:
        return list(conn.execute(select(notifications.c.status)).scalars())


def test_the_outbox_survives_a_restart_with_mail_down_then_delivers_once(
    tmp_path, database_url, smtp
):
    """Queued while the relay is down (temporary failures, retried with backoff), kept
    across a restart, delivered once the relay is back — and only once."""
    down = make_settings(
        tmp_path / "data",
        database_url,
        smtp_url=f"smtp://127.0.0.1:{unused_port()}",
        email_verification="off",
    )
    runtime = build_runtime(down, passwords=Passwords(concurrency=2, memory_kib=1024))
    from paradarum.db.migrate import upgrade

    upgrade(runtime.db)
    # Back off briefly: the test watches a few retries.
    delivery = runtime.email_delivery
    delivery.kind = dataclasses.replace(
        delivery.kind, policy=dataclasses.replace(delivery.kind.policy, base_seconds=0.05)
    )
    with TestClient(PeerFromHeader(create_app(runtime=runtime))) as client:
        token = new_account(client, "outbox@example.com")
        create_key(client, token, "queued while mail is down")
        wait_until(lambda: _attempts(runtime) >= 2 and statuses(runtime) == ["queued"], timeout=20)
    runtime.close()

    up = down.model_copy(update={"smtp_url": SecretStr(smtp.url())})
    for _ in range(2):  # two restarts: still once
        runtime = build_runtime(up, passwords=Passwords(concurrency=2, memory_kib=1024))
        with runtime.db.writing() as conn:  # due now, not after the backoff
            conn.execute(notifications.update().values(next_attempt_at=runtime.clock()))
        with TestClient(PeerFromHeader(create_app(runtime=runtime))):
            wait_until(lambda rt=runtime: statuses(rt) == ["sent"], timeout=20)
        runtime.close()
    assert len(to(smtp, "outbox@example.com", "added")) == 1


def test_a_slow_relay_never_makes_another_process_give_up_on_rows_still_waiting(
    tmp_path, database_url
):
    """Two senders share the outbox, on a clock the test moves; the relay accepts each
    message only when the test says so. The first sender is at its second message
    when more than a lease has passed since it began: rows claimed all at its start
    would look abandoned now. Each row's lease starts with its own send, so the
    second sender, starting then, gives up on nothing: every message is sent, once."""
    lease = 60.0
    with smtp_server(directory=tmp_path / "smtp", hold=True) as relay:
        settings = make_settings(
            tmp_path / "data", database_url, smtp_url=relay.url(), email_verification="off"
        )
        runtime = build_runtime(settings, passwords=Passwords(concurrency=2, memory_kib=1024))
        from paradarum.db.migrate import upgrade

        upgrade(runtime.db)
        emails = [f"waiting{n}@example.com" for n in range(5)]
        for email in emails:
            asyncio.run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
        clock = FrozenClock(runtime.clock())
        with runtime.db.writing() as conn:
            for number, (account_id,) in enumerate(conn.execute(select(accounts.c.id))):
                enqueue(
                    conn,
                    runtime.db,
                    account_id=account_id,
                    kind=Kind.VERIFY_EMAIL,
                    dedupe_key=f"slow-relay-{number}",
                    payload={},
                    now=clock(),
                )

        senders: list[Emails] = []

        def sender():
            """Another process's email worker, on the same database and clock."""
            emails = Emails(
                db=runtime.db,
                clock=clock,
                tokens=runtime.tokens,
                mailer=build_mailer(settings),
                mail_from=settings.mail_from,
                panel_url=settings.public_url,
            )
            senders.append(emails)
            return JobQueue(db=runtime.db, clock=clock).add(emails.kind(lease_seconds=lease))

        first, second = sender(), sender()

        async def arrived(count: int) -> None:
            await eventually(lambda: relay.arrived >= count)

        async def both() -> None:
            sending = asyncio.create_task(first.run_once())
            await arrived(1)  # the first sender's first message is at the relay
            clock.advance(lease * 0.9)
            relay.release(1)
            await arrived(2)  # its second, claimed 0.9 leases after the first
            clock.advance(lease * 0.2)  # 1.1 leases since the first sender began
            joining = asyncio.create_task(second.run_once())
            await arrived(3)  # the second sender took a row that was still waiting
            relay.release(len(emails))
            await asyncio.gather(sending, joining)

        try:
            asyncio.run(both())
            assert statuses(runtime) == ["sent"] * 5
        finally:
            for each in senders:
                each.close()
            runtime.close()
        assert sorted(r.rcpt_tos[0] for r in relay.messages()) == emails


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait, without blocking the event loop, until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def _attempts(runtime) -> int:
    with runtime.db.reading() as conn:
        return int(conn.execute(select(notifications.c.attempts)).scalar_one())


class TestEmailVerification:
    @pytest.fixture
    def settings_overrides(self, smtp: SmtpServer) -> dict[str, object]:
        return {
            "smtp_url": smtp.url(),
            "public_url": "https://panel.paradarum.test",
            "signups_per_address": 100,
        }

    def link_token(self, smtp: SmtpServer, email: str) -> str:
        wait_until(lambda: bool(to(smtp, email, "Confirm")))
        text = to(smtp, email, "Confirm")[-1].get_body(("plain",)).get_content()
        match = re.search(r"https://panel\.paradarum\.test/verify-email#token=(\S+)", text)
        assert match, text
        return unquote(match.group(1))

    def test_until_the_address_is_verified_no_keys_or_zones(self, client, smtp):
        signed = client.post(
            "/api/auth/signup", json={"email": "new@example.com", "password": PASSWORD}
        )
        assert signed.status_code == 201 and signed.json()["data"] is None
        token = login(client, "new@example.com")
        account = client.get("/api/account", headers=bearer(token)).json()["data"]
        assert account["emailVerified"] is False
        for path, body in (
            ("/api/account/apikeys", {"name": "k"}),
            ("/api/account/zones", {"hostname": "www.example.com"}),
        ):
            refused = client.post(path, json=body, headers=bearer(token))
            assert refused.status_code == 403 and "Verify your email" in refused.text

        link = self.link_token(smtp, "new@example.com")
        assert client.post("/api/auth/email/verify", json={"token": link + "x"}).status_code == 400
        verified = client.post("/api/auth/email/verify", json={"token": link})
        assert verified.status_code == 200, verified.text
        assert client.get("/api/account", headers=bearer(token)).json()["data"]["emailVerified"]
        create_key(client, token)
        # A link works once for its address; following it again changes nothing.
        assert client.post("/api/auth/email/verify", json={"token": link}).status_code == 200

    def test_sign_up_answers_the_same_whether_or_not_the_email_is_registered(self, client, smtp):
        first = client.post(
            "/api/auth/signup", json={"email": "taken@example.com", "password": PASSWORD}
        )
        again = client.post(
            "/api/auth/signup", json={"email": "taken@example.com", "password": PASSWORD + "!"}
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        # Only the first made an account (and a link).
        wait_until(lambda: len(to(smtp, "taken@example.com", "Confirm")) == 1)
        assert login(client, "taken@example.com")

    def test_a_new_link_can_be_asked_for_a_few_times_an_hour(self, client, smtp):
        signup(client, "later@example.com")
        token = login(client, "later@example.com")
        for _ in range(3):
            response = client.post("/api/account/email/verification", headers=bearer(token))
            assert response.status_code == 200
        limited = client.post("/api/account/email/verification", headers=bearer(token))
        assert limited.status_code == 429
        # Every link asked for is sent, even several in one second: the sign-up's and three.
        wait_until(lambda: len(to(smtp, "later@example.com", "Confirm")) == 4)


class TestExpiry:
    @pytest.fixture
    def settings_overrides(self, smtp: SmtpServer) -> dict[str, object]:
        return {"smtp_url": smtp.url(), "email_verification": "off", "key_limit": 2}

    def test_a_key_works_until_it_expires_then_frees_its_slot_with_reminders_once_each(
        self, frozen_client, frozen_runtime, clock, smtp
    ):
        from paradarum_client.models import rfc3339

        token = new_account(frozen_client, "expiry@example.com")
        expires = clock.now.replace(microsecond=0) + timedelta(days=8)
        created = frozen_client.post(
            "/api/account/apikeys",
            json={"name": "expiring", "expiresAt": rfc3339(expires)},
            headers=bearer(token),
        ).json()["data"]
        create_key(frozen_client, token, "another")  # the account is at its limit of 2
        assert created["expiresAt"] == rfc3339(expires)

        def reminders() -> list:
            return to(smtp, "expiry@example.com", "expires")

        def remind() -> None:
            from tests.support import run

            run(frozen_runtime.emails.remind_expiring())
            frozen_runtime.email_delivery.wake()

        remind()  # 8 days left: nothing yet
        clock.advance(1.5 * 86400)  # 6.5 days left
        remind()
        remind()
        wait_until(lambda: len(reminders()) == 1)
        clock.advance(6 * 86400)  # half a day left
        remind()
        wait_until(lambda: len(reminders()) == 2)
        remind()
        assert "1 day" in reminders()[1].get_body(("plain",)).get_content()
        assert frozen_client.get("/api/account", headers=bearer(created["key"])).status_code == 200
        token = login(frozen_client, "expiry@example.com")  # sessions last an hour
        full = frozen_client.post(
            "/api/account/apikeys", json={"name": "third"}, headers=bearer(token)
        )
        assert full.status_code == 400  # the expiring key still counts

        clock.advance(0.5 * 86400)  # expired
        assert frozen_client.get("/api/account", headers=bearer(created["key"])).status_code == 401
        token = login(frozen_client, "expiry@example.com")  # sessions last an hour
        listed = frozen_client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
        assert next(k for k in listed if k["id"] == created["id"])["status"] == "expired"
        assert create_key(frozen_client, token, "third")  # its slot is free
        remind()
        assert len(reminders()) == 2  # once each, never again


class TestMailHeaders:
    @pytest.fixture
    def settings_overrides(self, smtp: SmtpServer) -> dict[str, object]:
        return {"smtp_url": smtp.url(), "email_verification": "off"}

    # What a customer can type as a key name: encoded words that, decoded, would be a
    # right-to-left override, a CR/LF and a Bcc header.
    NAME = "=?utf-8?q?=E2=80=AE=0D=0ABcc:_eve@example.net?= shop"

    def test_a_key_name_with_encoded_words_arrives_in_the_subject_as_typed(self, client, smtp):
        token = new_account(client, "headers@example.com")
        key = create_key(client, token, self.NAME)
        assert key["name"] == self.NAME  # a name like any other
        revoked = client.post("/api/credentials/revoke", json={"credentials": [key["key"]]})
        assert revoked.status_code == 202
        wait_until(lambda: bool(to(smtp, "headers@example.com", "found in public")))
        [received] = [r for r in smtp.messages() if "found in public" in r.message["Subject"]]
        subject = str(received.message["Subject"])
        assert f"“{self.NAME}”" in subject  # literally as typed, not decoded
        assert not any(char in subject for char in "\r\n\u202e")
        assert received.message["Bcc"] is None
        assert received.rcpt_tos == ["headers@example.com"]
        # On the wire the Subject is nothing but encoded words of that text.
        head = received.raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
        start = next(n for n, line in enumerate(head) if line.startswith("Subject: "))
        lines = [head[start][len("Subject: ") :]]
        lines += itertools.takewhile(lambda line: line.startswith(" "), head[start + 1 :])
        for word in " ".join(lines).split():
            assert re.fullmatch(r"=\?utf-8\?b\?[A-Za-z0-9+/=]+\?=", word), word


def test_without_a_mail_server_the_customers_log_says_nothing_about_mail(client, runtime):
    """No mail server configured is the operator's business: the account's security log
    shows the key it made, and no "not emailed" line for it."""
    from tests.support import run

    token = new_account(client, "no-mail@example.com")
    create_key(client, token, "WordPress")
    run(runtime.email_delivery.run_once())
    wait_until(lambda: "recorded" in statuses(runtime))
    events = client.get("/api/account/audit?limit=100", headers=bearer(token)).json()["data"]
    assert "key.created" in [event["event"] for event in events]
    assert [event for event in events if event["event"] == "notification.sent"] == []
    assert not any("mail" in (event.get("detail") or "") for event in events)
