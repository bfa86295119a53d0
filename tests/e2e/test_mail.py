"""Sending mail to a real SMTP server (aiosmtpd on a loopback port, see tests/mail.py):
plain, STARTTLS, TLS and AUTH deliver exactly once; failures are one MailError that
says whether a retry may help and never shows the password."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from paradarum import keys, messages
from paradarum.config import Settings
from paradarum.mail import Mailer, MailError
from paradarum.runtime import build_mailer
from tests.mail import SmtpServer, silent_server, smtp_server, unused_port

# aiosmtpd itself sets its deprecated Session.login_data on every successful AUTH.
pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")

TO = "ada@example.com"


def mailer(url: str, *, ca_file: Path | None = None, timeout: float = 5.0) -> Mailer:
    """The mailer exactly as the service builds it: from settings."""
    settings = Settings(
        smtp_url=url,
        smtp_ca_file=ca_file,
        smtp_timeout_seconds=timeout,
        smtp_helo_name="app.paradarum.test",
        mail_from="Paradarum <no-reply@paradarum.test>",
    )  # type: ignore[call-arg]
    built = build_mailer(settings)
    assert built is not None
    return built


def notice(to: str = TO) -> EmailMessage:
    raw = keys.generate()
    return messages.key_added(
        to=to,
        mail_from="Paradarum <no-reply@paradarum.test>",
        panel_url="https://panel.example.com",
        key=messages.KeyRef(id=1, name="deploy script", prefix=keys.display_prefix(raw)),
        added_at=datetime.now(UTC),
        address="203.0.113.7",
        user_agent="curl/8.5.0",
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """Plain SMTP, no TLS, no AUTH."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def starttls_smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """Demands STARTTLS before MAIL; its self-signed certificate is ``ca_file``."""
    with smtp_server(tls="starttls", directory=tmp_path) as server:
        yield server


@pytest.fixture
def smtps(tmp_path: Path) -> Iterator[SmtpServer]:
    """TLS from the first byte."""
    with smtp_server(tls="implicit", directory=tmp_path) as server:
        yield server


@pytest.fixture
def auth_smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """STARTTLS, then AUTH with the generated ``user`` and ``password``."""
    with smtp_server(tls="starttls", directory=tmp_path, auth=True) as server:
        yield server


@pytest.fixture
def refusing_smtp() -> Iterator[SmtpServer]:
    """Refuses gone@example.com for good and busy@example.com for now."""
    refuse = {
        "gone@example.com": "550 5.1.1 <gone@example.com>: no such user",
        "busy@example.com": "450 4.2.1 <busy@example.com>: mailbox busy, try later",
    }
    with smtp_server(refuse=refuse) as server:
        yield server


def test_plain_smtp_delivers_exactly_one_message(smtp):
    message = notice()
    mailer(smtp.url()).send(message)
    [received] = smtp.messages()
    assert received.rcpt_tos == [TO]
    assert received.mail_from == "no-reply@paradarum.test"
    assert received.message["Message-ID"] == message["Message-ID"]
    assert received.message["Subject"] == "A new API key was added to your Paradarum account"
    body = received.message.get_body(("plain",))
    assert body is not None and "deploy script" in body.get_content()
    assert not received.over_tls


def test_starttls_delivers_over_a_verified_tls_connection(starttls_smtp):
    mailer(starttls_smtp.url(), ca_file=starttls_smtp.ca_file).send(notice())
    [received] = starttls_smtp.messages()
    assert received.over_tls and received.rcpt_tos == [TO]


def test_smtps_delivers_over_tls_from_the_first_byte(smtps):
    mailer(smtps.url(), ca_file=smtps.ca_file).send(notice())
    [received] = smtps.messages()
    assert received.over_tls and received.rcpt_tos == [TO]


def test_auth_signs_in_with_the_decoded_credentials_and_delivers(auth_smtp):
    assert "%40" in auth_smtp.url()  # the password's "@" travels percent-encoded
    mailer(auth_smtp.url(), ca_file=auth_smtp.ca_file).send(notice())
    [received] = auth_smtp.messages()
    assert received.signed_in_as == auth_smtp.user and received.over_tls


def test_a_wrong_password_is_a_temporary_error_that_never_shows_a_password(auth_smtp):
    wrong = auth_smtp.password[::-1]
    sender = mailer(auth_smtp.url(password=wrong), ca_file=auth_smtp.ca_file)
    with pytest.raises(MailError) as caught:
        sender.send(notice())
    text = str(caught.value)
    assert caught.value.temporary
    assert f"127.0.0.1:{auth_smtp.port}" in text and "AUTH: 535" in text
    assert wrong not in text and auth_smtp.password not in text
    assert wrong not in repr(sender) and auth_smtp.password not in repr(sender)
    assert auth_smtp.messages() == []


def test_a_certificate_that_is_not_trusted_is_refused_and_nothing_is_sent(starttls_smtp):
    # Without PARADARUM_SMTP_CA_FILE only the system's authorities count.
    with pytest.raises(MailError) as caught:
        mailer(starttls_smtp.url()).send(notice())
    assert "STARTTLS: TLS failed: self-signed certificate" in str(caught.value)
    assert caught.value.temporary
    assert starttls_smtp.messages() == []


def test_starttls_that_the_server_does_not_offer_is_an_error_not_a_plain_send(smtp):
    url = smtp.url() + "?starttls=true"
    with pytest.raises(MailError, match="STARTTLS: the relay does not offer it"):
        mailer(url).send(notice())
    assert smtp.messages() == []


def test_a_server_that_is_down_is_a_temporary_error_at_once():
    port = unused_port()
    started = time.monotonic()
    with pytest.raises(MailError) as caught:
        mailer(f"smtp://127.0.0.1:{port}", timeout=5).send(notice())
    assert time.monotonic() - started < 5
    assert caught.value.temporary
    assert f"SMTP 127.0.0.1:{port}: connecting" in str(caught.value)
    assert "refused" in str(caught.value).lower()


def test_a_server_that_never_answers_is_a_temporary_error_within_the_timeout():
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(MailError) as caught:
            mailer(f"smtp://127.0.0.1:{port}", timeout=1.0).send(notice())
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    assert caught.value.temporary
    assert "timed out" in str(caught.value)


def test_a_refused_recipient_is_a_permanent_error(refusing_smtp):
    with pytest.raises(MailError) as caught:
        mailer(refusing_smtp.url()).send(notice("gone@example.com"))
    assert not caught.value.temporary
    assert "recipient refused: 550 5.1.1" in str(caught.value)
    assert refusing_smtp.messages() == []


def test_a_recipient_refused_for_now_is_a_temporary_error(refusing_smtp):
    with pytest.raises(MailError) as caught:
        mailer(refusing_smtp.url()).send(notice("busy@example.com"))
    assert caught.value.temporary
    assert "450 4.2.1" in str(caught.value)


def test_one_mailer_sends_one_message_after_another(smtp):
    sender = mailer(smtp.url())
    for _ in range(3):
        sender.send(notice())
    assert len(smtp.messages()) == 3
    assert len({r.message["Message-ID"] for r in smtp.messages()}) == 3
