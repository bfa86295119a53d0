"""Mail settings: what PARADARUM_SMTP_URL and friends accept, and how they refuse."""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from paradarum.config import Settings
from paradarum.mail import Security, parse_smtp_url
from paradarum.runtime import build_mailer


def test_mail_is_off_until_an_smtp_url_is_set(monkeypatch):
    assert build_mailer(Settings()) is None
    monkeypatch.setenv("PARADARUM_SMTP_URL", "")
    assert build_mailer(Settings()) is None


@pytest.mark.parametrize(
    ("url", "host", "port", "security"),
    [
        ("smtp://relay.internal:2525", "relay.internal", 2525, Security.NONE),
        ("smtp://relay.internal", "relay.internal", 25, Security.NONE),
        ("smtp://relay.internal?starttls=true", "relay.internal", 587, Security.STARTTLS),
        ("SMTP://Relay.Internal:587?starttls=TRUE", "relay.internal", 587, Security.STARTTLS),
        ("smtp://relay.internal:25?starttls=false", "relay.internal", 25, Security.NONE),
        ("smtps://relay.internal", "relay.internal", 465, Security.TLS),
        ("smtp://[::1]:2525/", "::1", 2525, Security.NONE),
    ],
)
def test_smtp_urls_name_host_port_and_protection(url, host, port, security):
    endpoint = parse_smtp_url(url)
    assert (endpoint.host, endpoint.port, endpoint.security) == (host, port, security)
    assert endpoint.username is None and endpoint.password is None


def test_user_and_password_are_percent_decoded_and_never_shown(monkeypatch):
    password = secrets.token_urlsafe(16) + "@:/#?%"
    url = f"smtps://mailer%40example.com:{quote(password, safe='')}@relay.internal"
    monkeypatch.setenv("PARADARUM_SMTP_URL", url)
    settings = Settings()
    endpoint = parse_smtp_url(settings.smtp_url.get_secret_value())
    assert endpoint.username == "mailer@example.com"
    assert endpoint.password == password
    mailer = build_mailer(settings)
    for shown in (repr(settings), str(settings), repr(endpoint), str(endpoint), repr(mailer)):
        assert password not in shown and quote(password, safe="") not in shown


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("bogus", "no scheme"),
        ("http://relay.internal:25", "scheme 'http'"),
        ("smtp://:25", "no host"),
        ("smtp://", "no host"),
        ("smtp://relay.internal:99999", "unreadable host or port"),
        ("smtp://relay.internal:port", "unreadable host or port"),
        ("smtp://relay.internal/mail", "path"),
        ("smtp://relay.internal?starttls=yes", "starttls=true or starttls=false"),
        ("smtp://relay.internal?tls=true", "only one query option"),
        ("smtps://relay.internal?starttls=true", "cannot combine"),
    ],
)
def test_a_bad_smtp_url_is_refused_with_one_line_naming_the_setting(monkeypatch, url, reason):
    monkeypatch.setenv("PARADARUM_SMTP_URL", url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    [error] = caught.value.errors()
    assert error["loc"] == ("smtp_url",)
    message = str(error["ctx"]["error"])
    assert message.startswith("PARADARUM_SMTP_URL ") and reason in message
    assert "\n" not in message and "smtp://[user:password@]host:port" in message


def test_a_refused_smtp_url_never_repeats_its_password(monkeypatch):
    password = secrets.token_urlsafe(16)
    for url in (
        f"smtp://mailer:{password}@relay.internal:25",  # a password without TLS
        f"smtp://mailer:{password}@relay.internal:25/path",
        f"ftp://mailer:{password}@relay.internal",
    ):
        monkeypatch.setenv("PARADARUM_SMTP_URL", url)
        with pytest.raises(ValidationError) as caught:
            Settings()
        assert "PARADARUM_SMTP_URL" in str(caught.value)
        assert password not in str(caught.value) and password not in repr(caught.value)


def test_a_password_is_only_ever_sent_over_tls():
    password = secrets.token_urlsafe(16)
    with pytest.raises(ValueError, match="only over TLS"):
        parse_smtp_url(f"smtp://mailer:{password}@relay.internal:25")
    with pytest.raises(ValueError, match="both a user and a password"):
        parse_smtp_url("smtp://mailer@relay.internal:587?starttls=true")
    assert parse_smtp_url(f"smtp://mailer:{password}@relay.internal?starttls=true").username


def test_mail_from_must_be_exactly_one_address(monkeypatch):
    assert Settings().mail_from == "Paradarum <no-reply@localhost>"
    assert Settings(mail_from="alerts@paradarum.example").mail_from == "alerts@paradarum.example"
    for bad in ("bogus", "a@example.com, b@example.com", "Paradarum <no-reply@x>\nBcc: a@b.c"):
        monkeypatch.setenv("PARADARUM_MAIL_FROM", bad)
        with pytest.raises(ValidationError, match="PARADARUM_MAIL_FROM"):
            Settings()


def test_the_ca_file_must_exist_and_be_a_certificate(tmp_path):
    with pytest.raises(ValidationError, match="smtp_ca_file"):
        Settings(smtp_ca_file=tmp_path / "missing.pem")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ValidationError, match="PARADARUM_SMTP_CA_FILE must be a PEM file"):
        Settings(smtp_ca_file=not_pem)


def test_timeout_and_helo_name_are_checked(monkeypatch):
    for name, bad in (("SMTP_TIMEOUT_SECONDS", "0"), ("SMTP_HELO_NAME", "app\r\nRSET")):
        monkeypatch.setenv(f"PARADARUM_{name}", bad)
        with pytest.raises(ValidationError):
            Settings()
        monkeypatch.delenv(f"PARADARUM_{name}")
