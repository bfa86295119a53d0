"""Forgotten passwords and squatted addresses, against a real SMTP server: a reset link
by email (the same answer for any email, limited, single use, one hour), a reset that
ends every session and verifies the address, the operator's command, and an address
taken back from whoever signed up with it first. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from paradarum.cli import build_app
from paradarum.services.twofactor import totp_code, totp_step
from tests.mail import SmtpServer, smtp_server
from tests.support import PASSWORD, bearer, login, peer, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")

PANEL = "https://panel.paradarum.test"
NEW_PASSWORD = "a brand new passphrase"
RESET_SUBJECT = "Reset your Paradarum password"
CLAIMED_SUBJECT = "Someone signed up for Paradarum with your email address"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(directory=tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def settings_overrides(smtp: SmtpServer) -> dict[str, object]:
    return {"smtp_url": smtp.url(), "public_url": PANEL, "signups_per_address": 100}


def mails(smtp: SmtpServer, email: str, subject: str) -> list:
    return [
        r.message
        for r in smtp.messages()
        if email in r.rcpt_tos and subject in str(r.message["Subject"])
    ]


def link(smtp: SmtpServer, email: str, subject: str, count: int = 1) -> str:
    """The token of the ``count``-th such message (waiting for it)."""
    wait_until(lambda: len(mails(smtp, email, subject)) >= count)
    text = mails(smtp, email, subject)[count - 1].get_body(("plain",)).get_content()
    match = re.search(re.escape(PANEL) + r"/reset-password#token=(\S+)", text)
    assert match, text
    return unquote(match.group(1))


def sign_up(client, email: str, password: str = PASSWORD, address: str = "192.0.2.1"):
    response = client.post(
        "/api/auth/signup", json={"email": email, "password": password}, headers=peer(address)
    )
    assert response.status_code == 201, response.text
    return response


def forgot(client, email: str, address: str = "192.0.2.9"):
    return client.post("/api/auth/password/forgot", json={"email": email}, headers=peer(address))


def reset(client, token: str, password: str = NEW_PASSWORD):
    return client.post("/api/auth/password/reset", json={"token": token, "password": password})


def signs_in(client, email: str, password: str) -> int:
    return client.post("/api/auth/login", json={"email": email, "password": password}).status_code


def test_forgot_answers_the_same_whether_or_not_the_email_is_registered(client, smtp):
    sign_up(client, "known@example.com")
    known = forgot(client, "Known@Example.com ")
    unknown = forgot(client, "nobody@example.com")
    malformed = forgot(client, "not an email")
    assert known.status_code == unknown.status_code == malformed.status_code == 202
    assert known.json() == unknown.json() == malformed.json()
    assert link(smtp, "known@example.com", RESET_SUBJECT)
    assert not [r for r in smtp.messages() if "nobody@example.com" in r.rcpt_tos]


def test_a_reset_sets_the_password_ends_every_session_and_verifies_the_address(client, smtp):
    sign_up(client, "reset@example.com")
    sessions = [login(client, "reset@example.com") for _ in range(2)]
    assert (
        client.get("/api/account", headers=bearer(sessions[0])).json()["data"]["emailVerified"]
        is False
    )
    assert forgot(client, "reset@example.com").status_code == 202
    token = link(smtp, "reset@example.com", RESET_SUBJECT)

    weak = reset(client, token, "short")
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    done = reset(client, token)
    assert done.status_code == 200, done.text
    for session in sessions:
        assert client.get("/api/account", headers=bearer(session)).status_code == 401
    assert signs_in(client, "reset@example.com", PASSWORD) == 401
    fresh = login(client, "reset@example.com", NEW_PASSWORD)
    account = client.get("/api/account", headers=bearer(fresh)).json()["data"]
    assert account["emailVerified"] is True
    events = [
        e["event"] for e in client.get("/api/account/audit", headers=bearer(fresh)).json()["data"]
    ]
    assert "account.password_reset" in events and "account.email_verified" in events


def test_a_reset_link_works_once_and_voids_the_links_sent_before_it(client, smtp):
    sign_up(client, "once@example.com")
    forgot(client, "once@example.com")
    forgot(client, "once@example.com")
    first = link(smtp, "once@example.com", RESET_SUBJECT, 1)
    second = link(smtp, "once@example.com", RESET_SUBJECT, 2)
    assert reset(client, second).status_code == 200
    for used in (second, first):
        again = reset(client, used, "yet another passphrase")
        assert again.status_code == 400 and "token" in again.json()["errors"]
    assert signs_in(client, "once@example.com", NEW_PASSWORD) == 200
    # Neither a tampered token nor a verification link is a reset link.
    assert reset(client, second[:-2] + "xx").status_code == 400
    verify_mail = mails(smtp, "once@example.com", "Confirm")[0].get_body(("plain",))
    verify = re.search(r"verify-email#token=(\S+)", verify_mail.get_content())
    assert verify and reset(client, unquote(verify.group(1))).status_code == 400


def test_a_reset_link_expires_after_an_hour(frozen_client, clock, smtp):
    sign_up(frozen_client, "late@example.com")
    forgot(frozen_client, "late@example.com")
    token = link(smtp, "late@example.com", RESET_SUBJECT)
    clock.advance(3601)
    expired = reset(frozen_client, token)
    assert expired.status_code == 400 and "expired" in expired.json()["message"]
    assert signs_in(frozen_client, "late@example.com", PASSWORD) == 200


def test_forgot_is_limited_per_email_and_per_address(client, smtp):
    sign_up(client, "limited@example.com")
    # Per email, registered or not, from many addresses: 3 an hour.
    for email in ("limited@example.com", "unregistered@example.com"):
        answers = [forgot(client, email, f"198.51.100.{n}") for n in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert int(answers[-1].headers["Retry-After"]) > 0
    # Per address, whatever the email: 10 an hour.
    answers = [forgot(client, f"someone{n}@example.com", "203.0.113.5") for n in range(11)]
    assert [a.status_code for a in answers] == [202] * 10 + [429]
    wait_until(lambda: len(mails(smtp, "limited@example.com", RESET_SUBJECT)) == 3)


def test_the_operator_command_sends_a_link(client, runtime, smtp, monkeypatch):
    sign_up(client, "ops-reset@example.com")
    settings = runtime.settings
    monkeypatch.setenv("PARADARUM_SMTP_URL", smtp.url())
    args = ["accounts", "reset-password", "Ops-Reset@example.com"]
    args += ["--data-dir", str(settings.data_dir)]
    if not settings.is_sqlite:
        args += ["--database-url", str(settings.database_url)]
        monkeypatch.setenv("PARADARUM_JWT_SECRET", settings.jwt_secret.get_secret_value())
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "ops-reset@example.com" in result.output and "1 hour" in result.output
    runtime.email_delivery.wake()
    token = link(smtp, "ops-reset@example.com", RESET_SUBJECT)
    assert reset(client, token).status_code == 200
    missing = CliRunner().invoke(build_app(), [*args[:2], "nobody@example.com", *args[3:]])
    assert missing.exit_code == 1 and "No account with the email" in missing.output


def test_a_squatter_loses_the_address_to_its_owner(client, smtp):
    """Someone signs up with another person's address; the owner's own sign-up gets
    the owner a reset link (not a second link verifying the squatter's password),
    and the reset ends the squatter's password and session."""
    sign_up(client, "victim@example.com", "the squatters password", address="203.0.113.66")
    squatter = login(client, "victim@example.com", "the squatters password")
    assert client.get("/api/account", headers=bearer(squatter)).status_code == 200

    owner = sign_up(client, "victim@example.com", "the owners own password", address="192.0.2.7")
    assert owner.json()["data"] is None  # the same answer as any sign-up
    token = link(smtp, "victim@example.com", CLAIMED_SUBJECT)
    assert len(mails(smtp, "victim@example.com", "Confirm")) == 1  # the squatter's only

    assert reset(client, token, "the owners own password").status_code == 200
    assert client.get("/api/account", headers=bearer(squatter)).status_code == 401
    assert signs_in(client, "victim@example.com", "the squatters password") == 401
    mine = login(client, "victim@example.com", "the owners own password")
    assert client.get("/api/account", headers=bearer(mine)).json()["data"]["emailVerified"]


def test_a_squatters_second_factor_does_not_lock_the_owner_out(frozen_client, clock, smtp):
    """An authenticator app the squatter turned on before anyone proved the address
    goes with the squatter's password: the owner signs in with the password they set,
    and no code of the squatter's is asked for or accepted."""
    victim = "victim@example.com"
    sign_up(frozen_client, victim, "the squatters password", address="203.0.113.66")
    squatter = login(frozen_client, victim, "the squatters password")
    started = frozen_client.post("/api/account/two-factor/totp", headers=bearer(squatter))
    assert started.status_code == 201, started.text
    secret = started.json()["data"]["secret"]
    confirmed = frozen_client.post(
        "/api/account/two-factor/totp/confirm",
        json={"code": totp_code(secret, totp_step(clock.now))},
        headers=bearer(squatter),
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(30)

    sign_up(frozen_client, victim, "the owners own password", address="192.0.2.7")
    token = link(smtp, victim, CLAIMED_SUBJECT)
    assert reset(frozen_client, token, "the owners own password").status_code == 200

    signed_in = frozen_client.post(
        "/api/auth/login", json={"email": victim, "password": "the owners own password"}
    )
    assert signed_in.status_code == 200, signed_in.text
    assert "twoFactorRequired" not in signed_in.json()["data"]
    mine = signed_in.json()["data"]["token"]
    factors = frozen_client.get("/api/account/two-factor", headers=bearer(mine)).json()["data"]
    assert factors["totp"] is False and factors["recoveryCodesLeft"] == 0
    (entry,) = [
        e
        for e in frozen_client.get("/api/account/audit", headers=bearer(mine)).json()["data"]
        if e["event"] == "account.password_reset"
    ]
    assert "second factors" in entry["detail"]


def test_an_unverified_address_cannot_invite_anyone(client, smtp):
    """Else a squatter brings in an accomplice, who stays a member (an owner, even)
    of the account after its owner takes the address back."""
    sign_up(client, "victim@example.com", "the squatters password")
    squatter = login(client, "victim@example.com", "the squatters password")
    invited = client.post(
        "/api/account/invitations",
        json={"email": "accomplice@example.com", "role": "owner"},
        headers=bearer(squatter),
    )
    assert invited.status_code == 403, invited.text
    assert "Verify your email address" in invited.json()["message"]
    assert client.get("/api/account/invitations", headers=bearer(squatter)).json()["data"] == []

    # The owner takes the address back: alone in the account, and free to invite.
    sign_up(client, "victim@example.com", "the owners own password")
    token = link(smtp, "victim@example.com", CLAIMED_SUBJECT)
    assert reset(client, token, "the owners own password").status_code == 200
    mine = login(client, "victim@example.com", "the owners own password")
    members = client.get("/api/account/members", headers=bearer(mine)).json()["data"]
    assert [m["email"] for m in members] == ["victim@example.com"]
    colleague = client.post(
        "/api/account/invitations",
        json={"email": "colleague@example.com", "role": "viewer"},
        headers=bearer(mine),
    )
    assert colleague.status_code == 201, colleague.text
    wait_until(lambda: bool(mails(smtp, "colleague@example.com", "invited")))
    assert not [r for r in smtp.messages() if "accomplice@example.com" in r.rcpt_tos]


def test_a_verified_address_gets_no_mail_from_a_second_sign_up(client, smtp):
    sign_up(client, "settled@example.com")
    forgot(client, "settled@example.com")
    assert reset(client, link(smtp, "settled@example.com", RESET_SUBJECT)).status_code == 200
    sign_up(client, "settled@example.com", "someone elses password")
    sign_up(client, "marker@example.com")  # its mail leaves after any the first caused
    wait_until(lambda: bool(mails(smtp, "marker@example.com", "Confirm")))
    assert not mails(smtp, "settled@example.com", CLAIMED_SUBJECT)


def test_the_python_client_asks_for_a_link_and_resets_the_password(client, smtp):
    from paradarum_client import Client
    from paradarum_client.errors import ValidationError

    sign_up(client, "python@example.com")
    # The client speaks to this test's app through the test client's own transport.
    with Client(base_url="http://testserver", token="", transport=client._transport) as py:
        py.forgot_password("python@example.com")
        token = link(smtp, "python@example.com", RESET_SUBJECT)
        py.reset_password(token, NEW_PASSWORD)
        with pytest.raises(ValidationError):
            py.reset_password(token, "yet another passphrase")
        assert py.login("python@example.com", NEW_PASSWORD).token
