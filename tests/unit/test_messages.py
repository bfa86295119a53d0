"""What Paradarum emails: facts, escaping, no secrets, no tracking, sound headers."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from paradarum import keys, messages
from paradarum.messages import KeyRef

PANEL = "https://panel.example.com"
FROM = "Paradarum <no-reply@paradarum.example>"
TO = "ada@example.com"
WHEN = datetime(2026, 11, 27, 9, 14, 3, tzinfo=UTC)
FOUND_AT = "https://github.com/ada/site/blob/main/wp-config.php"
MARKUP = "<img src=x onerror=alert(1)>"


def key_ref(name: str = "WordPress purge plugin", key_id: int = 12) -> tuple[KeyRef, str]:
    """A reference to a freshly generated key, and the raw key it stands for."""
    raw = keys.generate()
    return KeyRef(id=key_id, name=name, prefix=keys.display_prefix(raw)), raw


def build(kind: str, key: KeyRef, **extra: object) -> EmailMessage:
    common: dict[str, object] = {"to": TO, "mail_from": FROM, "panel_url": PANEL, "date": WHEN}
    if kind == "leaked":
        return messages.key_revoked_as_leaked(
            **common, key=key, found_at=FOUND_AT, revoked_at=WHEN, **extra
        )  # type: ignore[arg-type]
    if kind == "added":
        return messages.key_added(
            **common,
            key=key,
            added_at=WHEN,
            address="203.0.113.7",
            user_agent="curl/8.5.0",
            **extra,
        )  # type: ignore[arg-type]
    if kind == "expiring":
        return messages.key_expiring(
            **common, key=key, expires_at=WHEN + timedelta(days=7), **extra
        )  # type: ignore[arg-type]
    raise AssertionError(kind)


def text_of(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def html_of(message: EmailMessage) -> str:
    return str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]


def verification(token: str, valid_for: timedelta = timedelta(hours=24)) -> EmailMessage:
    return messages.email_verification(
        to=TO, mail_from=FROM, panel_url=PANEL, token=token, valid_for=valid_for, date=WHEN
    )


def every_message() -> list[tuple[EmailMessage, str]]:
    """One of each message, with the raw key its KeyRef stands for."""
    built = []
    for kind in ("leaked", "added", "expiring"):
        key, raw = key_ref()
        built.append((build(kind, key), raw))
    built.append((verification(secrets.token_urlsafe(32)), keys.generate()))
    for moved in (False, True):
        built.append((zone_lost("*.shop.example.com", moved=moved), keys.generate()))
    return built


def zone_lost(hostname: str, *, moved: bool) -> EmailMessage:
    return messages.zone_lost(
        to=TO, mail_from=FROM, panel_url=PANEL, hostname=hostname, moved=moved, at=WHEN, date=WHEN
    )


@pytest.mark.parametrize(("moved", "said"), [(False, "is suspended"), (True, "moved to another")])
def test_a_zone_that_left_the_accounts_reach_says_which_and_where_the_record_lives(moved, said):
    message = zone_lost("*.shop.example.com", moved=moved)
    assert said in message["Subject"] and "*.shop.example.com" in message["Subject"]
    text = " ".join(text_of(message).split())
    assert "_paradarum-challenge.shop.example.com" in text
    assert f"{PANEL}/account/zones" in text


def test_every_message_has_a_plain_text_part_and_an_html_alternative():
    for message, _ in every_message():
        assert message.get_content_type() == "multipart/alternative"
        parts = [part.get_content_type() for part in message.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        assert text_of(message).strip() and "<html" in html_of(message)


def test_every_message_has_the_headers_of_an_automatic_notice():
    for message, _ in every_message():
        assert message["Subject"]
        assert message["From"] == FROM
        assert message["To"] == TO
        assert message["Date"].datetime == WHEN.replace(microsecond=0)
        assert re.fullmatch(r"<[^<>@\s]+@paradarum\.example>", message["Message-ID"])
        assert message["Auto-Submitted"] == "auto-generated"


def test_each_message_gets_its_own_message_id():
    key, _ = key_ref()
    assert build("added", key)["Message-ID"] != build("added", key)["Message-ID"]


def test_messages_travel_as_short_ascii_lines():
    # Quoted-printable bodies and encoded headers: any relay takes them unchanged.
    for message, _ in every_message():
        wire = message.as_bytes()
        assert wire.isascii()
        assert max(len(line) for line in wire.split(b"\n")) <= 998


def test_no_message_carries_a_raw_key_or_its_hash():
    for message, raw in every_message():
        wire = message.as_string()
        decoded = text_of(message) + html_of(message)
        for secret in (raw, keys.hash_key(raw)):
            assert secret not in wire and secret not in decoded


def test_a_key_named_with_a_key_shows_only_that_keys_prefix():
    pasted = keys.generate()
    key, _ = key_ref(name=f"oops {pasted}")
    for kind in ("leaked", "added", "expiring"):
        message = build(kind, key)
        everything = message.as_string() + text_of(message) + html_of(message)
        assert pasted not in everything
        assert keys.display_prefix(pasted) + "…" in text_of(message)


def test_a_key_ref_refuses_anything_but_an_eight_character_prefix():
    raw = keys.generate()
    with pytest.raises(ValueError, match="never the key itself"):
        KeyRef(id=1, name="k", prefix=raw)
    with pytest.raises(ValueError):
        KeyRef(id=1, name="k", prefix="pdm_ab")


def test_markup_in_a_key_name_is_escaped_in_html_and_kept_as_text():
    key, _ = key_ref(name=MARKUP)
    for kind in ("leaked", "added", "expiring"):
        message = build(kind, key)
        assert "<img" not in html_of(message)
        assert "&lt;img src=x onerror=alert(1)&gt;" in html_of(message)
        assert MARKUP in text_of(message)


def test_markup_in_a_user_agent_or_revoked_key_name_is_escaped():
    key, _ = key_ref()
    other, _ = key_ref(name=MARKUP, key_id=13)
    added = messages.key_added(
        to=TO,
        mail_from=FROM,
        panel_url=PANEL,
        key=key,
        added_at=WHEN,
        address=MARKUP,
        user_agent=MARKUP,
    )
    leaked = build("leaked", key, also_revoked=[other])
    for message in (added, leaked):
        assert "<img" not in html_of(message)
        assert "&lt;img" in html_of(message)


def test_a_line_break_in_a_key_name_cannot_add_a_header_or_a_line():
    key, _ = key_ref(name="site\r\nBcc: intruder@example.net\n\nClick here")
    for kind in ("leaked", "added", "expiring"):
        message = build(kind, key)
        parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
        assert parsed["Bcc"] is None
        assert set(parsed.keys()) <= {
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "X-Auto-Response-Suppress",
            "MIME-Version",
            "Content-Type",
        }
        assert "\n" not in str(parsed["Subject"])
        text = text_of(message)
        assert "site Bcc: intruder@example.net Click here" in " ".join(text.split())
        assert not any(line.startswith(("Bcc", "Click")) for line in text.splitlines())


def test_html_has_no_images_scripts_or_remote_resources():
    for message, _ in every_message():
        page = html_of(message).lower()
        for forbidden in ("<img", "<script", "<link", "<iframe", "src=", "url(", "@import"):
            assert forbidden not in page, forbidden


def test_every_link_shows_its_own_address_and_goes_only_where_it_says():
    for message, _ in every_message():
        links = re.findall(r'<a href="([^"]*)">([^<]*)</a>', html_of(message))
        assert links
        for href, text in links:
            assert href == text
            assert href.startswith((PANEL + "/", FOUND_AT))


def test_leaked_key_notice_says_which_key_where_when_and_what_to_do():
    key, _ = key_ref()
    message = build("leaked", key)
    text = " ".join(text_of(message).split())
    assert "WordPress purge plugin" in message["Subject"]
    assert f"WordPress purge plugin ({key.prefix}…)" in text
    assert f"Found at: {FOUND_AT}" in text
    assert f'<a href="{FOUND_AT}">{FOUND_AT}</a>' in html_of(message)
    assert "2026-11-27 09:14 UTC" in text
    assert f"{PANEL}/account/api-keys" in text  # create a new key
    assert "integration" in text
    assert f"{PANEL}/account/security-log" in text
    assert "Rotate anything the key could reach" in text


def test_leaked_key_notice_lists_the_keys_revoked_with_it():
    key, _ = key_ref()
    first, _ = key_ref(name="made by intruder", key_id=13)
    second, _ = key_ref(name="another", key_id=14)
    message = build("leaked", key, also_revoked=[first, second])
    for made in (first, second):
        assert f"{made.name} ({made.prefix}…)" in text_of(message)
        assert f"{made.name} ({made.prefix}…)" in html_of(message)
    assert "revoked too" in text_of(message)
    assert "revoked too" not in text_of(build("leaked", key))


def test_a_leak_location_that_is_not_a_web_address_is_shown_but_never_linked():
    key, _ = key_ref()
    for where in ("javascript:alert(1)", "reported to the public revocation endpoint"):
        message = messages.key_revoked_as_leaked(
            to=TO, mail_from=FROM, panel_url=PANEL, key=key, found_at=where, revoked_at=WHEN
        )
        assert where in text_of(message)
        assert f'href="{where}"' not in html_of(message)


def test_key_added_notice_says_which_key_when_and_from_where():
    key, _ = key_ref()
    message = build("added", key)
    text = text_of(message)
    assert message["Subject"] == "A new API key was added to your Paradarum account"
    assert f"WordPress purge plugin ({key.prefix}…)" in text
    assert "2026-11-27 09:14 UTC" in text
    assert "203.0.113.7" in text and "curl/8.5.0" in text
    assert "If it was not you" in text
    assert f"{PANEL}/account/api-keys" in text and f"{PANEL}/account/security-log" in text


def test_key_added_with_another_key_says_so_and_asks_to_revoke_that_key_too():
    key, _ = key_ref()
    creator, _ = key_ref(key_id=3)
    text = text_of(build("added", key, created_by_prefix=creator.prefix))
    assert f"the API key {creator.prefix}…" in text
    assert f"Revoke the key {creator.prefix}… too" in " ".join(text.split())


def test_expiry_reminder_says_when_and_how_to_roll_the_key():
    key, _ = key_ref(key_id=42)
    message = build("expiring", key)
    text = text_of(message)
    assert message["Subject"].endswith("expires in 7 days")
    assert f"WordPress purge plugin ({key.prefix}…)" in text
    assert "2026-12-04 09:14 UTC" in text
    assert f"POST {PANEL}/api/account/apikeys/42/roll" in text
    assert "gracePeriodMinutes" in text and "Roll" in text
    assert f"{PANEL}/api/account/apikeys/42/roll" in html_of(message)


def test_expiry_reminder_the_day_before_says_one_day_even_when_sent_a_little_late():
    key, _ = key_ref()
    message = messages.key_expiring(
        to=TO,
        mail_from=FROM,
        panel_url=PANEL,
        key=key,
        expires_at=WHEN + timedelta(days=1),
        date=WHEN + timedelta(minutes=20),
    )
    assert message["Subject"].endswith("expires in 1 day")


def test_verification_message_links_to_the_token_and_says_how_long_it_works():
    token = secrets.token_urlsafe(32)
    message = verification(token, valid_for=timedelta(hours=24))
    link = f"{PANEL}/verify-email#token={token}"
    assert link in text_of(message)
    assert f'<a href="{link}">{link}</a>' in html_of(message)
    assert "24 hours" in text_of(message)
    assert "1 hour 30 minutes" in text_of(verification(token, timedelta(minutes=90)))


def test_the_verification_token_appears_only_in_its_link():
    token = secrets.token_urlsafe(32)
    message = verification(token)
    assert text_of(message).count(token) == 1
    assert html_of(message).count(token) == 2  # the href and the link's text
    assert token not in str(message["Subject"])


def test_a_verification_token_that_is_not_url_safe_is_refused():
    with pytest.raises(ValueError):
        verification("short")
    with pytest.raises(ValueError):
        verification(secrets.token_urlsafe(32) + "\n<b>")


def test_a_recipient_or_sender_with_a_line_break_is_refused():
    key, _ = key_ref()
    for to, sender in ((TO + "\r\nBcc: x@example.net", FROM), (TO, FROM + "\nBcc: x@example.net")):
        with pytest.raises(ValueError):
            messages.key_added(
                to=to,
                mail_from=sender,
                panel_url=PANEL,
                key=key,
                added_at=WHEN,
                address=None,
                user_agent=None,
            )


def test_the_panel_url_must_be_a_plain_web_address():
    key, _ = key_ref()
    for bad in ("javascript:alert(1)", "https://panel.example.com/?x=1", "panel.example.com"):
        with pytest.raises(ValueError, match="panel_url"):
            messages.key_expiring(
                to=TO, mail_from=FROM, panel_url=bad, key=key, expires_at=WHEN, date=WHEN
            )


@pytest.mark.parametrize(
    ("change", "subject"),
    [
        ("totp_on", "An authenticator app was turned on"),
        ("totp_off", "An authenticator app was turned off"),
        ("passkey_added", "A passkey was added"),
        ("passkey_removed", "A passkey was removed"),
        ("recovery_code_used", "A recovery code was used"),
        ("recovery_codes_renewed", "New recovery codes were made"),
    ],
)
def test_a_second_factor_change_says_what_changed_and_what_to_do_if_it_was_not_you(change, subject):
    message = messages.second_factor_changed(
        to=TO,
        mail_from=FROM,
        panel_url=PANEL,
        change=change,
        at=WHEN,
        detail=MARKUP,
        address="203.0.113.7",
        user_agent="Firefox",
        date=WHEN,
    )
    assert str(message["Subject"]).startswith(subject)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "203.0.113.7" in text
    assert f"{PANEL}/account/security" in text
    assert "If it was not you" in text
    assert MARKUP not in html  # the detail is escaped


def test_an_unknown_second_factor_change_is_refused():
    with pytest.raises(ValueError):
        messages.second_factor_changed(
            to=TO,
            mail_from=FROM,
            panel_url=PANEL,
            change="nonsense",
            at=WHEN,
            detail=None,
            address=None,
            user_agent=None,
        )


def test_an_owner_s_second_factor_mail_names_the_member_each_account_and_escapes_them():
    message = messages.member_second_factor_changed(
        to=TO,
        mail_from=FROM,
        panel_url=PANEL,
        member="dev@example.com",
        account_names=["Acme", MARKUP],
        change="totp_off",
        at=WHEN,
        address="203.0.113.7",
        user_agent="Firefox",
        date=WHEN,
    )
    assert str(message["Subject"]).startswith("dev@example.com: second factor changed in Acme")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "turned off two-factor sign-in" in text and "“Acme”" in text
    assert f"{PANEL}/account/members" in text
    assert MARKUP not in html
    with pytest.raises(ValueError):
        messages.member_second_factor_changed(
            to=TO,
            mail_from=FROM,
            panel_url=PANEL,
            member="dev@example.com",
            account_names=["Acme"],
            change="nonsense",
            at=WHEN,
            address=None,
            user_agent=None,
        )


@pytest.mark.parametrize(
    ("change", "said"), [("joined", "joined"), ("left", "left"), ("removed", "was removed from")]
)
def test_a_membership_mail_says_who_joined_or_went(change, said):
    message = messages.membership_changed(
        to=TO,
        mail_from=FROM,
        panel_url=PANEL,
        member="dev@example.com",
        role="developer",
        account_name="Acme",
        change=change,
        by="admin@example.com",
        at=WHEN,
        date=WHEN,
    )
    text = message.get_body(("plain",)).get_content()
    assert f"dev@example.com {said} your Paradarum account “Acme”" in text
    # Who removed them is said for a removal only.
    assert ("admin@example.com" in text) is (change == "removed")
