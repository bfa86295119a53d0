"""What Paradarum emails to account owners. Pure: building a message does no I/O.

Each builder returns an :class:`~email.message.EmailMessage` with a plain-text
body and an HTML alternative that say the same thing, because both are rendered
from one description of the message (a few paragraphs, a table of facts, lists).
That one renderer is also the only place that escapes HTML, so no builder can
forget to.

Rules every message keeps, and why:

- **No tracking.** No images at all (remote or inline), no pixels, no external
  styles, and every link points straight at where it says — the panel, or the
  page where a leaked key was found — with the link's text being its address.
  A security notice that phones home or hides its destination teaches people
  to click what phishing mails send them.
- **No secrets.** A key is named by its name and 8-character prefix only
  (:class:`KeyRef` refuses anything longer); never a raw key, hash, password or
  session token. The exceptions are the links of the address confirmation, the
  invitation, the password reset and the sign-in link, which are the whole point
  of those messages and are short-lived.
- **Customer-supplied text is inert.** Key names, user agents and URLs are put
  on one line (control characters, line and paragraph separators and bidi
  overrides become spaces), anything shaped like a key is cut to its prefix,
  and the HTML escapes all of it.
- **Headers carry customer text only as encoded words of that text.** The
  Subject is never parsed: :class:`_LiteralText` takes it as the literal
  string and writes it as RFC 2047 encoded words (UTF-8, base64), so a key
  name cannot add a ``Bcc:``, and one that contains ``=?utf-8?q?...?=`` arrives
  as those characters, never decoded into a line break or a direction override.
"""

from __future__ import annotations

import html
import re
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.charset import BASE64, Charset
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, make_msgid
from urllib.parse import quote, urlsplit

from paradarum_client.keyformat import DISPLAY_PREFIX_LENGTH, PREFIX

__all__ = [
    "INVITATION_PATH",
    "RESET_PASSWORD_PATH",
    "SIGN_IN_LINK_PATH",
    "VERIFY_EMAIL_PATH",
    "KeyRef",
    "email_verification",
    "invitation",
    "key_added",
    "key_expiring",
    "key_revoked_as_leaked",
    "password_reset",
    "sign_in_link",
    "single_address",
]

#: Panel page the verification link opens; the token rides in the fragment
#: (``#token=...``), which browsers never send to a server, so it stays out of
#: access logs, proxies and ``Referer`` headers. The page posts it to the API.
VERIFY_EMAIL_PATH = "/verify-email"
INVITATION_PATH = "/invitations"
#: Panel page a password reset link opens (the token in the fragment, likewise).
RESET_PASSWORD_PATH = "/reset-password"
#: Panel page a one-time sign-in link opens (likewise).
SIGN_IN_LINK_PATH = "/confirm-sign-in"

_PREFIX_SHAPE = re.compile(rf"{PREFIX}[A-Za-z0-9]{{{DISPLAY_PREFIX_LENGTH - len(PREFIX)}}}")
# Key-shaped text in a customer string (someone pasting a key as its name):
# anything from the prefix on is cut, checksum or not.
_KEY_SHAPE = re.compile(rf"({PREFIX}[A-Za-z0-9]{{4}})[A-Za-z0-9]{{8,}}")
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_\-.~]{16,512}")
# Characters that would end a line or reorder text on screen.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_HEADERS = HeaderRegistry()


class _LiteralText(BaseHeader):
    """An unstructured header whose value is literal text.

    The standard policies parse a header value as it would arrive in a message,
    decoding any ``=?charset?q?...?=`` in it: a key name holding one would reach
    the mail client as the characters it encodes (a CR/LF, a right-to-left
    override). This class keeps the text as given and folds it as RFC 2047
    encoded words of exactly that text, each of whole characters and short
    enough for a 78-character line, which every mail client decodes back to it.
    """

    max_count = 1
    # UTF-8 bytes per word: base64 makes 52 characters of them, 64 with the
    # "=?utf-8?b?" and "?=" around, 73 after "Subject: ".
    _BYTES_PER_WORD = 39
    _CHARSET = Charset("utf-8")
    _CHARSET.header_encoding = BASE64

    @classmethod
    def parse(cls, value: str, kwds: dict[str, object]) -> None:
        kwds["parse_tree"] = None  # never parsed, never folded by the parser
        kwds["decoded"] = str(value)

    def fold(self, *, policy: Policy) -> str:
        words = [self._CHARSET.header_encode(chunk) for chunk in self._chunks(str(self))]
        return f"{self.name}: " + f"{policy.linesep} ".join(words) + policy.linesep

    @classmethod
    def _chunks(cls, text: str) -> list[str]:
        chunks: list[str] = []
        current, size = "", 0
        for char in text:
            width = len(char.encode())
            if current and size + width > cls._BYTES_PER_WORD:
                chunks.append(current)
                current, size = "", 0
            current += char
            size += width
        return [*chunks, current]


_LITERAL_HEADERS = HeaderRegistry()
_LITERAL_HEADERS.map_to_type("subject", _LiteralText)
#: The policy every message is built with: the default one, except that the
#: Subject (the one header with customer text) is literal text (above).
POLICY = email_policy.default.clone(header_factory=_LITERAL_HEADERS)


@dataclass(frozen=True)
class KeyRef:
    """A key as a message names it: its ID, name and 8-character prefix, never the key."""

    id: int
    name: str
    prefix: str

    def __post_init__(self) -> None:
        if not _PREFIX_SHAPE.fullmatch(self.prefix):
            raise ValueError(
                f"KeyRef.prefix must be the key's first {DISPLAY_PREFIX_LENGTH} characters "
                f"({PREFIX} and 4 more), never the key itself"
            )


def single_address(text: str) -> Address:
    """Parse one email address (``a@example.com`` or ``Name <a@example.com>``).

    Raises :class:`ValueError` for anything else: no address, several, a missing
    domain, or a line break (which would start a new header).
    """
    if any(unicodedata.category(char)[0] == "C" for char in text):
        raise ValueError("an email address cannot contain control characters or line breaks")
    header = _HEADERS("to", text)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())  # an AddressHeader
    if header.defects or len(addresses) != 1:
        raise ValueError("expected exactly one email address, such as name@example.com")
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError("an email address needs a local part and a domain: name@example.com")
    return address


# --- The four messages ------------------------------------------------------------


def key_revoked_as_leaked(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    key: KeyRef,
    found_at: str,
    revoked_at: datetime,
    also_revoked: Sequence[KeyRef] = (),
    date: datetime | None = None,
) -> EmailMessage:
    """Tell the owner a key was revoked because it showed up in public.

    ``found_at`` is where it was found: a URL (shown as text and as a plain link)
    or a short description when there is no URL. ``also_revoked`` are the keys
    that this key had created, revoked with it because whoever found the key may
    have made them.
    """
    panel = _Panel(panel_url)
    name = _inline(key.name, limit=100)
    where = _link_or_text(found_at)
    blocks: list[_Block] = [
        _Para(
            f"Your API key “{name}” ({_shown(key)}) was found in public, so Paradarum "
            f"revoked it on {_when(revoked_at)}. It no longer works: every request made "
            "with it is refused."
        ),
        _Facts(
            (
                ("Key", (f"{name} ({_shown(key)})",)),
                ("Found at", (where,)),
                ("Revoked", (_when(revoked_at),)),
            )
        ),
    ]
    if also_revoked:
        blocks += [
            _Para(
                "These keys were created with it and were revoked too, because whoever "
                "found the key may have made them:"
            ),
            _List(
                tuple((f"{_inline(k.name, limit=100)} ({_shown(k)})",) for k in also_revoked),
                ordered=False,
            ),
        ]
    blocks += [
        _Para("What to do now:"),
        _List(
            (
                (
                    "Create a new key in the panel, under API keys: ",
                    panel.link("/account/api-keys"),
                ),
                (
                    "Put the new key into the integration that used the old one (plugin "
                    "settings, deployment secrets), and keep it out of code and public places.",
                ),
                (
                    "Check the security log for requests made with the old key that were "
                    "not yours: ",
                    panel.link("/account/security-log"),
                ),
                (
                    "Rotate anything the key could reach or that was kept next to it: revoke "
                    "keys you do not recognise, review your zones and recent purges, and "
                    "change any other secret stored in the same file or repository.",
                ),
            ),
            ordered=True,
        ),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject=f"Paradarum revoked your API key “{_inline(key.name, limit=60)}”: "
        "it was found in public",
        blocks=blocks,
        date=date,
    )


def key_added(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    key: KeyRef,
    added_at: datetime,
    address: str | None,
    user_agent: str | None,
    created_by_prefix: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell the owner a new API key was added to the account, and what to do if it
    was not them. ``created_by_prefix`` is the prefix of the key that created it,
    or ``None`` when it was created from a signed-in session."""
    panel = _Panel(panel_url)
    name = _inline(key.name, limit=100)
    if created_by_prefix is not None and not _PREFIX_SHAPE.fullmatch(created_by_prefix):
        raise ValueError("created_by_prefix must be a key's 8-character prefix")
    added_with = (
        f"the API key {created_by_prefix}…"
        if created_by_prefix
        else "a signed-in session (the panel or a session token)"
    )
    steps: list[tuple[_Inline, ...]] = [
        ("Revoke the new key in the panel, under API keys: ", panel.link("/account/api-keys")),
        (
            "Change your password: that signs out every session, including one someone "
            "else may have.",
        ),
        (
            "Check the security log for other activity you do not recognise: ",
            panel.link("/account/security-log"),
        ),
    ]
    if created_by_prefix:
        steps.insert(1, (f"Revoke the key {created_by_prefix}… too: it was used to add this one.",))
    blocks: list[_Block] = [
        _Para(f"The API key “{name}” ({_shown(key)}) was added to your Paradarum account."),
        _Facts(
            (
                ("Key", (f"{name} ({_shown(key)})",)),
                ("Added", (_when(added_at),)),
                ("From address", (_inline(address or "unknown", limit=100),)),
                ("User agent", (_inline(user_agent or "unknown", limit=200),)),
                ("Added with", (added_with,)),
            )
        ),
        _Para("If this was you, there is nothing to do."),
        _Para("If it was not you, someone else can act on your account. Now:"),
        _List(tuple(steps), ordered=True),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject="A new API key was added to your Paradarum account",
        blocks=blocks,
        date=date,
    )


def key_expiring(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    key: KeyRef,
    expires_at: datetime,
    date: datetime | None = None,
) -> EmailMessage:
    """Remind the owner that a key expires soon (sent 7 days and 1 day before).

    The "in N days" is counted from the message's ``date`` to ``expires_at``,
    rounded to whole days, so a reminder that leaves the outbox late still tells
    the truth; the exact time is always stated too.
    """
    panel = _Panel(panel_url)
    sent = _utc(date) if date is not None else datetime.now(UTC)
    name = _inline(key.name, limit=100)
    left = _utc(expires_at) - sent
    days = max(1, round(left / timedelta(days=1)))
    when_left = "has expired" if left <= timedelta(0) else f"expires in {_plural(days, 'day')}"
    roll_url = panel.url(f"/api/account/apikeys/{int(key.id)}/roll")
    blocks: list[_Block] = [
        _Para(
            f"Your API key “{name}” ({_shown(key)}) {when_left}: on {_when(expires_at)}. "
            "From then on every request made with it is refused."
        ),
        _Facts(
            (
                ("Key", (f"{name} ({_shown(key)})",)),
                ("Expires", (_when(expires_at),)),
            )
        ),
        _Para(
            "To keep the integration that uses it working, roll the key: you get a new key "
            "with the same name and settings, and the old one keeps working for a grace "
            "period you choose while you put the new one in place."
        ),
        _List(
            (
                (
                    "In the panel: press Roll next to the key, under API keys: ",
                    panel.link("/account/api-keys"),
                ),
                ("Or with the API (the answer shows the new key once):",),
            ),
            ordered=False,
        ),
        _Pre(
            f"curl -X POST {roll_url} \\\n"
            '  -H "Authorization: Bearer $PARADARUM_API_KEY" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            """  -d '{"gracePeriodMinutes": 60}'"""
        ),
        _Para("If nothing uses the key any more, there is nothing to do: it stops by itself."),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject=f"Your Paradarum API key “{_inline(key.name, limit=60)}” {when_left}",
        blocks=blocks,
        date=date,
    )


def zone_lost(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    hostname: str,
    moved: bool,
    at: datetime,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell the owner that a zone can no longer be purged: its TXT record was missing on
    three daily checks in a row (suspended), or it went to another account that proved
    control of the domain while the record was gone (moved)."""
    panel = _Panel(panel_url)
    host = _inline(hostname, limit=253)
    record = f"_paradarum-challenge.{host.removeprefix('*.')}"
    if moved:
        subject = f"Your Paradarum zone {host} moved to another account"
        opening = (
            f"On {_when(at)} another Paradarum account proved control of {host} with its "
            f"own DNS record at {record}, and yours was no longer there. The zone is now "
            "that account's: your purges no longer reach it."
        )
        advice = (
            "If the domain is still yours, someone else changed its DNS: check who can edit "
            "it, publish your record again and verify the zone in the panel."
        )
    else:
        subject = f"Your Paradarum zone {host} is suspended"
        opening = (
            f"Paradarum checks every day that the DNS record proving control of {host} is "
            f"still at {record}. It was missing on three checks in a row, the last on "
            f"{_when(at)}, so the zone is suspended: nothing is purged for it."
        )
        advice = (
            "Publish the record again (its value is shown with the zone) and verify the "
            "zone: it is active again at once. If the domain is no longer yours, delete "
            "the zone."
        )
    blocks: list[_Block] = [
        _Para(opening),
        _Para(advice),
        _List((("Your zones in the panel: ", panel.link("/account/zones")),), ordered=False),
    ]
    return _message(to=to, mail_from=mail_from, subject=subject, blocks=blocks, date=date)


def webhook_disabled(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    endpoint_id: int,
    url: str,
    failing_since: datetime | None,
    at: datetime,
    reason: str,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell the owner that Paradarum stopped sending events to a webhook endpoint whose
    deliveries kept failing. The URL is shown without its query (receivers often put a
    token there)."""
    panel = _Panel(panel_url)
    shown = _inline(url.split("?", 1)[0].split("#", 1)[0], limit=200)
    since = f" since {_when(failing_since)}" if failing_since is not None else ""
    subject = "A Paradarum webhook endpoint was disabled"
    blocks: list[_Block] = [
        _Para(
            f"Deliveries to your webhook endpoint {shown} (endpoint {endpoint_id}) have "
            f"failed{since}, each retried for a day, so on {_when(at)} Paradarum disabled "
            "it: no events are sent there until it is enabled again."
        ),
        _Para(f"The last failure: {_inline(reason, limit=300)}."),
        _Para(
            "Fix the receiver, then enable the endpoint in the panel. Each failed delivery "
            "is in the endpoint's delivery log, where it can be sent again."
        ),
        _List((("Your webhooks in the panel: ", panel.link("/account/webhooks")),), ordered=False),
    ]
    return _message(to=to, mail_from=mail_from, subject=subject, blocks=blocks, date=date)


def email_verification(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    token: str,
    valid_for: timedelta,
    date: datetime | None = None,
) -> EmailMessage:
    """Ask a new account's owner to confirm the address.

    The link is ``{panel_url}/verify-email#token={token}`` (see
    :data:`VERIFY_EMAIL_PATH`). ``token`` is the caller's one-time token
    (URL-safe characters, 16–512 of them); it is the only secret any message
    carries, and only in that link.
    """
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ValueError("the verification token must be 16-512 URL-safe characters")
    if valid_for <= timedelta(0):
        raise ValueError("valid_for must be positive")
    panel = _Panel(panel_url)
    recipient = single_address(to).addr_spec
    link = _Link(panel.url(VERIFY_EMAIL_PATH) + "#token=" + quote(token, safe=""))
    blocks: list[_Block] = [
        _Para(
            f"Someone, hopefully you, signed up for Paradarum with {recipient}. "
            "To confirm that this address is yours, open this link:"
        ),
        _Para(link),
        _Para(
            f"The link works once, for {_duration(valid_for)}. If it has run out, sign in "
            "and ask for a new one in the panel."
        ),
        _Para("If you did not sign up, ignore this email: the address stays unconfirmed."),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject="Confirm your email address for Paradarum",
        blocks=blocks,
        date=date,
    )


def invitation(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    token: str,
    account_name: str,
    role: str,
    invited_by: str | None,
    expires_at: datetime,
    date: datetime | None = None,
) -> EmailMessage:
    """Invite someone to an account. The link is
    ``{panel_url}/invitations#token={token}`` (:data:`INVITATION_PATH`); it works
    once, until ``expires_at``, and only for the person signed in as ``to``."""
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ValueError("the invitation token must be 16-512 URL-safe characters")
    panel = _Panel(panel_url)
    recipient = single_address(to).addr_spec
    link = _Link(panel.url(INVITATION_PATH) + "#token=" + quote(token, safe=""))
    who = _inline(invited_by, limit=320) if invited_by else "A member"
    account = _inline(account_name, limit=200)
    blocks: list[_Block] = [
        _Para(
            f"{who} invited {recipient} to the Paradarum account “{account}” "
            f"as {_inline(role, limit=20)}. To accept, open this link and sign in "
            "(or sign up) with this address:"
        ),
        _Para(link),
        _Para(f"The link works once, until {_when(expires_at)}."),
        _Para("If you did not expect this, ignore this email: nothing changes."),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject=f"You are invited to the Paradarum account “{account}”",
        blocks=blocks,
        date=date,
    )


def password_reset(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    token: str,
    valid_for: timedelta,
    claimed: bool = False,
    date: datetime | None = None,
) -> EmailMessage:
    """Send a link to choose a new password: ``{panel_url}/reset-password#token=...``.

    ``claimed``: the reason is not a forgotten password but a sign-up for an
    address that an unverified account already holds. Whoever holds it may not be
    the address's owner, so the owner gets this link, never a second verification
    link that would confirm the first sign-up's password.
    """
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ValueError("the reset token must be 16-512 URL-safe characters")
    if valid_for <= timedelta(0):
        raise ValueError("valid_for must be positive")
    panel = _Panel(panel_url)
    recipient = single_address(to).addr_spec
    link = _Link(panel.url(RESET_PASSWORD_PATH) + "#token=" + quote(token, safe=""))
    if claimed:
        opening = [
            _Para(
                f"Someone, hopefully you, signed up for Paradarum with {recipient}, but an "
                "account with this address was already waiting for it to be confirmed. It "
                "may have been made by you earlier, or by someone else with your address."
            ),
            _Para(
                "Either way the address is yours: choose the account's password with this "
                "link. That signs out every session of the account, ends the password it "
                "had, and confirms the address:"
            ),
        ]
        subject = "Someone signed up for Paradarum with your email address"
    else:
        opening = [
            _Para(
                f"Someone, hopefully you, asked to reset the password of the Paradarum "
                f"account of {recipient}. To choose a new password, open this link:"
            ),
        ]
        subject = "Reset your Paradarum password"
    blocks: list[_Block] = [
        *opening,
        _Para(link),
        _Para(
            f"The link works once, for {_duration(valid_for)}. Choosing a new password "
            "signs out every session of the account."
        ),
        _Para(
            "If you did not ask for this, ignore this email: nothing changes until "
            "the link is used."
        ),
    ]
    return _message(to=to, mail_from=mail_from, subject=subject, blocks=blocks, date=date)


def sign_in_link(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    token: str,
    valid_for: timedelta,
    address: str | None,
    user_agent: str | None,
    date: datetime | None = None,
) -> EmailMessage:
    """Finish a sign-in with the right password from a new address, made while the
    account sees many failed sign-ins: ``{panel_url}/confirm-sign-in#token=...``."""
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ValueError("the sign-in token must be 16-512 URL-safe characters")
    if valid_for <= timedelta(0):
        raise ValueError("valid_for must be positive")
    panel = _Panel(panel_url)
    link = _Link(panel.url(SIGN_IN_LINK_PATH) + "#token=" + quote(token, safe=""))
    blocks: list[_Block] = [
        _Para(
            "Someone, hopefully you, signed in to your Paradarum account with its "
            "password from an address it was not used from before. Your account is "
            "seeing many failed sign-ins from elsewhere, so a sign-in from a new address "
            "needs this email too. To finish signing in, open this link:"
        ),
        _Para(link),
        _Facts(
            (
                ("From address", (_inline(address or "unknown", limit=100),)),
                ("User agent", (_inline(user_agent or "unknown", limit=200),)),
            )
        ),
        _Para(
            f"The link works once, for {_duration(valid_for)}. From then on this address "
            "signs in with the password alone."
        ),
        _Para(
            "If it was not you, someone knows your password: do not open the link, and "
            "choose a new password with “Forgot your password?” on the sign-in page: ",
            panel.link("/forgot-password"),
        ),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject="Finish signing in to Paradarum",
        blocks=blocks,
        date=date,
    )


_SECOND_FACTOR_CHANGES = {
    "totp_on": (
        "An authenticator app was turned on",
        "Two-factor sign-in with an authenticator app was turned on for your Paradarum sign-in.",
    ),
    "totp_off": (
        "An authenticator app was turned off",
        "Two-factor sign-in with an authenticator app was turned off for your Paradarum sign-in.",
    ),
    "passkey_added": ("A passkey was added", "A passkey was added to your Paradarum sign-in."),
    "passkey_removed": (
        "A passkey was removed",
        "A passkey was removed from your Paradarum sign-in.",
    ),
    "recovery_code_used": (
        "A recovery code was used",
        "A recovery code was used to sign in to Paradarum as you. Each code works once.",
    ),
    "recovery_codes_renewed": (
        "New recovery codes were made",
        "New recovery codes were made for your Paradarum sign-in; the old ones no longer work.",
    ),
}


def second_factor_changed(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    change: str,
    at: datetime,
    detail: str | None,
    address: str | None,
    user_agent: str | None,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell a person that one of their second factors changed, or that a recovery
    code was used, and what to do if it was not them."""
    if change not in _SECOND_FACTOR_CHANGES:
        raise ValueError(f"unknown second-factor change {change!r}")
    subject, sentence = _SECOND_FACTOR_CHANGES[change]
    panel = _Panel(panel_url)
    facts: list[tuple[str, tuple[_Inline, ...]]] = [("When", (_when(at),))]
    if detail:
        facts.append(("Detail", (_inline(detail, limit=100),)))
    facts += [
        ("From address", (_inline(address or "unknown", limit=100),)),
        ("User agent", (_inline(user_agent or "unknown", limit=200),)),
    ]
    blocks: list[_Block] = [
        _Para(sentence),
        _Facts(tuple(facts)),
        _Para("If this was you, there is nothing to do."),
        _Para(
            "If it was not you, someone can sign in as you. Change your password at once "
            "(that signs out every session), then check your second factors: ",
            panel.link("/account/security"),
        ),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject=f"{subject} on your Paradarum sign-in",
        blocks=blocks,
        date=date,
    )


_MEMBER_SECOND_FACTOR_CHANGES = {
    "totp_on": "turned on two-factor sign-in with an authenticator app",
    "totp_off": "turned off two-factor sign-in with an authenticator app",
    "passkey_added": "added a passkey to their sign-in",
    "passkey_removed": "removed a passkey from their sign-in",
    "recovery_code_used": "signed in with a recovery code",
    "recovery_codes_renewed": "made new recovery codes",
}


def member_second_factor_changed(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    member: str,
    account_names: Sequence[str],
    change: str,
    at: datetime,
    address: str | None,
    user_agent: str | None,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell an owner that a member of their accounts (one mail whatever the
    number) changed a second factor or used a recovery code: who and what, never
    a code or a secret."""
    if change not in _MEMBER_SECOND_FACTOR_CHANGES:
        raise ValueError(f"unknown second-factor change {change!r}")
    if not account_names:
        raise ValueError("no account named")
    who = _inline(member, limit=254)
    names = [f"“{_inline(name, limit=100)}”" for name in account_names[:10]]
    if len(account_names) > len(names):
        names.append(f"{len(account_names) - len(names)} more")
    accounts = (
        f"your Paradarum account {names[0]}"
        if len(names) == 1
        else f"your Paradarum accounts {', '.join(names)}"
    )
    first = _inline(account_names[0], limit=60)
    panel = _Panel(panel_url)
    blocks: list[_Block] = [
        _Para(f"{who}, a member of {accounts}, {_MEMBER_SECOND_FACTOR_CHANGES[change]}."),
        _Facts(
            (
                ("Member", (who,)),
                ("When", (_when(at),)),
                ("From address", (_inline(address or "unknown", limit=100),)),
                ("User agent", (_inline(user_agent or "unknown", limit=200),)),
            )
        ),
        _Para(
            "If you expected it, there is nothing to do. If not, ask them, and remove "
            "the member if their sign-in may be someone else’s: ",
            panel.link("/account/members"),
        ),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject=f"{who}: second factor changed in {first}"
        + (f" and {len(account_names) - 1} more" if len(account_names) > 1 else ""),
        blocks=blocks,
        date=date,
    )


_MEMBERSHIP_CHANGES = {"joined": "joined", "left": "left", "removed": "was removed from"}


def membership_changed(
    *,
    to: str,
    mail_from: str,
    panel_url: str,
    member: str,
    role: str,
    account_name: str,
    change: str,
    by: str | None,
    at: datetime,
    date: datetime | None = None,
) -> EmailMessage:
    """Tell an owner that a member joined their account, left it or was removed."""
    if change not in _MEMBERSHIP_CHANGES:
        raise ValueError(f"unknown membership change {change!r}")
    who = _inline(member, limit=254)
    account = _inline(account_name, limit=100)
    facts: list[tuple[str, tuple[_Inline, ...]]] = [
        ("Member", (who,)),
        ("Role", (_inline(role, limit=20),)),
        ("When", (_when(at),)),
    ]
    if by and change == "removed":
        facts.append(("Removed by", (_inline(by, limit=254),)))
    panel = _Panel(panel_url)
    blocks: list[_Block] = [
        _Para(f"{who} {_MEMBERSHIP_CHANGES[change]} your Paradarum account “{account}”."),
        _Facts(tuple(facts)),
        _Para("The members of the account: ", panel.link("/account/members")),
    ]
    return _message(
        to=to,
        mail_from=mail_from,
        subject=f"{who} {_MEMBERSHIP_CHANGES[change]} {_inline(account_name, limit=60)}",
        blocks=blocks,
        date=date,
    )


# --- One description, two renderings ----------------------------------------------


@dataclass(frozen=True)
class _Link:
    """A link whose text is its own address: what you see is where it goes."""

    url: str


_Inline = str | _Link


@dataclass(frozen=True)
class _Para:
    parts: tuple[_Inline, ...]

    def __init__(self, *parts: _Inline) -> None:
        object.__setattr__(self, "parts", parts)


@dataclass(frozen=True)
class _Facts:
    rows: tuple[tuple[str, tuple[_Inline, ...]], ...]


@dataclass(frozen=True)
class _List:
    items: tuple[tuple[_Inline, ...], ...]
    ordered: bool


@dataclass(frozen=True)
class _Pre:
    text: str


_Block = _Para | _Facts | _List | _Pre

_FOOTER = (
    "Paradarum sent this message automatically to the address of the account it "
    "concerns. Replies are not read."
)
_WIDTH = 72


def _message(
    *,
    to: str,
    mail_from: str,
    subject: str,
    blocks: Sequence[_Block],
    date: datetime | None,
) -> EmailMessage:
    sender = single_address(mail_from)
    recipient = single_address(to)
    message = EmailMessage(policy=POLICY)
    message["Subject"] = _inline(subject, limit=200)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(_utc(date or datetime.now(UTC)), usegmt=True)
    # With a domain given, make_msgid needs no lookup of this host's name.
    message["Message-ID"] = make_msgid(domain=sender.domain)
    # RFC 3834: no out-of-office or other automatic replies to this message.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    # Quoted-printable keeps every line ASCII and short, whatever the relay accepts.
    message.set_content(_text(blocks), cte="quoted-printable")
    message.add_alternative(
        _html(blocks, title=message["Subject"]), subtype="html", cte="quoted-printable"
    )
    return message


def _text(blocks: Sequence[_Block]) -> str:
    def inline(parts: Sequence[_Inline]) -> str:
        return "".join(part.url if isinstance(part, _Link) else part for part in parts)

    def wrap(text: str, first: str = "", rest: str = "") -> str:
        # URLs are never broken: a link must stay whole to be clickable.
        return textwrap.fill(
            text,
            _WIDTH,
            initial_indent=first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )

    out: list[str] = []
    for block in blocks:
        if isinstance(block, _Para):
            out.append(wrap(inline(block.parts)))
        elif isinstance(block, _Facts):
            width = max(len(label) for label, _ in block.rows) + 2
            out.append(
                "\n".join(f"{label + ':':<{width}}{inline(value)}" for label, value in block.rows)
            )
        elif isinstance(block, _List):
            lines = []
            for number, item in enumerate(block.items, start=1):
                bullet = f"{number}. " if block.ordered else "- "
                lines.append(wrap(inline(item), bullet, " " * len(bullet)))
            out.append("\n".join(lines))
        else:
            out.append(textwrap.indent(block.text, "    "))
    out.append(wrap(_FOOTER))
    return "\n\n".join(out) + "\n"


def _html(blocks: Sequence[_Block], *, title: str) -> str:
    def inline(parts: Sequence[_Inline]) -> str:
        return "".join(
            f'<a href="{html.escape(part.url)}">{html.escape(part.url)}</a>'
            if isinstance(part, _Link)
            else html.escape(part)
            for part in parts
        )

    out: list[str] = []
    for block in blocks:
        if isinstance(block, _Para):
            out.append(f"<p>{inline(block.parts)}</p>")
        elif isinstance(block, _Facts):
            rows = "".join(
                f'<tr><th scope="row" align="left" style="padding:2px 16px 2px 0">'
                f"{html.escape(label)}</th><td>{inline(value)}</td></tr>"
                for label, value in block.rows
            )
            out.append(f'<table role="presentation">{rows}</table>')
        elif isinstance(block, _List):
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{inline(item)}</li>" for item in block.items)
            out.append(f"<{tag}>{items}</{tag}>")
        else:
            out.append(f"<pre>{html.escape(block.text)}</pre>")
    body = "\n".join(out)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n"
        '<body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1a1a; '
        'max-width: 40em; margin: 0 auto; padding: 16px">\n'
        f"{body}\n"
        f'<p style="color: #555; font-size: 0.9em">{html.escape(_FOOTER)}</p>\n'
        "</body>\n</html>\n"
    )


# --- Small helpers -----------------------------------------------------------------


class _Panel:
    """The panel's base URL, checked once, and the links into it."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
            or _inline(base, limit=2000) != base
            or " " in base
        ):
            raise ValueError(
                "panel_url must be an http(s) base URL such as https://panel.example.com"
            )
        self.base = base.rstrip("/")

    def url(self, path: str) -> str:
        return self.base + path

    def link(self, path: str) -> _Link:
        return _Link(self.url(path))


def _inline(text: str, *, limit: int) -> str:
    """A customer-supplied string made safe to show anywhere: one line, no bidi
    tricks, key-shaped text cut to its prefix, at most ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS else char
        for char in text
    )
    cleaned = " ".join(cleaned.split())
    cleaned = _KEY_SHAPE.sub(lambda match: match.group(1) + "…", cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _link_or_text(candidate: str) -> _Inline:
    """A plain link when ``candidate`` is an http(s) URL; otherwise just its text,
    so that a ``javascript:`` or other odd address is never clickable."""
    text = _inline(candidate, limit=2000)
    parts = urlsplit(text)
    if text == candidate and parts.scheme in ("http", "https") and parts.netloc and " " not in text:
        return _Link(text)
    return text


def _shown(key: KeyRef) -> str:
    return key.prefix + "…"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _duration(span: timedelta) -> str:
    """``24 hours``, ``1 hour 30 minutes``, ``3 days``: for people, not parsers."""
    minutes = max(1, round(span.total_seconds() / 60))
    # "24 hours" and "36 hours" read better than "1 day" and "1 day 12 hours".
    days, minutes = divmod(minutes, 24 * 60) if minutes >= 48 * 60 else (0, minutes)
    hours, minutes = divmod(minutes, 60)
    parts = [
        _plural(amount, unit)
        for amount, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if amount
    ]
    return " ".join(parts)
