"""How both clients speak the API over HTTP, whatever their I/O style.

Everything here is the same for :class:`~paradarum_client.Client` and
:class:`~paradarum_client.AsyncClient`, so that the two cannot drift apart: the
checks made when a client is built, each endpoint's request and how its answer is
read (a :class:`Call`, defined once below), the headers, the envelope, the error
that each status becomes, when a refusal is worth retrying, and how pages link.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack, cast, get_args
from urllib.parse import parse_qs, urlsplit

import httpx

from paradarum_client import __version__, keyformat
from paradarum_client.durations import end_of_day
from paradarum_client.errors import (
    AlreadyRevokedError,
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    LimitError,
    NetworkError,
    NotFoundError,
    ParadarumError,
    RateLimitedError,
    ServerError,
    StepUpRequiredError,
    TwoFactorEnrolmentRequiredError,
    TwoFactorRequired,
    ValidationError,
)
from paradarum_client.models import (
    Account,
    AccountMembership,
    AccountSettingsIn,
    ApiKey,
    AuditEvent,
    CodeIn,
    CredentialsIn,
    EmailIn,
    EmailTokenIn,
    Invitation,
    InvitationIn,
    InvitationTokenIn,
    KeyUsage,
    Member,
    NewKey,
    NewKeyIn,
    NewWebhook,
    OidcKey,
    OidcTokenIn,
    PasswordResetIn,
    Purge,
    PurgeIn,
    ReauthenticateIn,
    RecoveryCodes,
    RemoveMemberIn,
    RoleIn,
    RollIn,
    Session,
    SignInChallenge,
    SwitchIn,
    TotpEnrolment,
    TwoFactorSignInIn,
    TwoFactorStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookIn,
    WebhookRollIn,
    WebhookUpdateIn,
    Zone,
    ZoneIn,
    from_wire,
    rfc3339,
    to_wire,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# What a request whose answer is NDJSON (a Call with ``lines``) accepts.
NDJSON = "application/x-ndjson"
URL_VARIABLE = "PARADARUM_URL"
KEY_VARIABLE = "PARADARUM_API_KEY"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` back for the next (None: the last page)."""

    items: list[T]
    next_cursor: str | None


# -- checks made when a client is built ---------------------------------------------


def check_base_url(url: str, *, source: str) -> str:
    """``url`` without a trailing slash, or :class:`ConfigurationError` saying what is wrong.

    httpx would accept ``paradarum.example`` and only fail on the first request, with
    "UnsupportedProtocol"; a user needs to hear that the scheme is missing.
    """
    # The URL may carry a user name and password: then it is not repeated in a message.
    shown = f" {url.strip()!r}" if "@" not in url else ""
    if url != url.strip():
        raise ConfigurationError(f"The server URL{source} has spaces or a line break around it.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigurationError(
            f"The server URL{source}{shown} must start with http:// or https://."
        )
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"The server URL{source} is not a valid URL: {exc}.") from None
    if not host:
        raise ConfigurationError(f"The server URL{source}{shown} has no host name.")
    return url.rstrip("/")


def check_api_key(api_key: str, *, source: str) -> None:
    """Refuse what is not a Paradarum key, saying why, without repeating the key."""
    problem = keyformat.problem(api_key)
    if problem is not None:
        raise ConfigurationError(f"The API key{source} cannot be used: {problem}.")


def check_token(token: str) -> None:
    """A session token is a JWT: printable ASCII without spaces."""
    if token != token.strip():
        raise ConfigurationError("The session token has spaces or a line break around it.")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise ConfigurationError("The session token has characters no session token has.")


# -- requests -----------------------------------------------------------------------

# The longest grace period a roll takes (the server's limit, 7 days).
MAX_GRACE = timedelta(days=7)


def grace_minutes(grace: timedelta | int) -> int:
    """``grace`` as the whole minutes a roll sends, or :class:`ValidationError` saying
    what is allowed (0 to 7 days, whole minutes) before anything is sent.

    An int is taken as seconds would be a trap (``grace=60``); so only 0 is accepted
    as a number, and anything else must be a ``timedelta``.
    """
    if isinstance(grace, int) and not isinstance(grace, bool) and grace == 0:
        grace = timedelta(0)
    if not isinstance(grace, timedelta):
        raise ValidationError(
            f"The grace period must be a timedelta (such as timedelta(hours=1)), not {grace!r}.",
            errors={"grace": ["Give a timedelta."]},
        )
    problem = None
    if grace < timedelta(0) or grace > MAX_GRACE:
        problem = "from 0 to 7 days (10080 minutes)"
    elif grace % timedelta(minutes=1):
        problem = "in whole minutes"
    if problem is not None:
        raise ValidationError(
            f"The grace period must be {problem}; {describe(grace)} is not.",
            errors={"grace": [f"Use a grace period {problem}."]},
        )
    return grace // timedelta(minutes=1)


def describe(span: timedelta) -> str:
    """``2 days 3 hours``, ``90 seconds``: a span as a person says it (for messages)."""
    if span < timedelta(0):
        return "minus " + describe(-span)
    seconds = span.total_seconds()
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count:.0f} {unit}{'s' if count != 1 else ''}")
    if seconds or not parts:
        parts.append(f"{seconds:g} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


# -- answers ------------------------------------------------------------------------


def as_list(values: str | Iterable[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def next_cursor(response: httpx.Response) -> str | None:
    """The ``cursor`` of the ``Link: <...>; rel="next"`` header, if any."""
    link = response.links.get("next")
    if not link or "url" not in link:
        return None
    values = parse_qs(urlsplit(link["url"]).query).get("cursor")
    return values[0] if values else None


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (it may be a number or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def error_for(response: httpx.Response, *, on_400: type[ValidationError]) -> ParadarumError:
    """The exception an unsuccessful answer becomes, with the server's own sentence."""
    status = response.status_code
    data: Any = None
    try:
        body = response.json()
        message = str(body.get("message") or "")
        errors = body.get("errors") or None
        data = body.get("data")
    except (ValueError, AttributeError):
        message, errors = "", None
    message = message or f"HTTP {status} {response.reason_phrase}".strip()
    if status == 403 and isinstance(data, dict) and data.get("stepUpRequired") is True:
        return StepUpRequiredError(message, status_code=status, errors=errors)
    if status == 403 and isinstance(data, dict) and data.get("twoFactorEnrolmentRequired"):
        return TwoFactorEnrolmentRequiredError(message, status_code=status, errors=errors)
    if status == 403:
        return ForbiddenError(message, status_code=status, errors=errors)
    if status == 401:
        return AuthenticationError(message, status_code=status)
    if status == 404:
        return NotFoundError(message, status_code=status)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after(response))
    if status >= 500:
        return ServerError(message, status_code=status)
    if status == 400 and errors:
        return ValidationError(message, status_code=status, errors=errors)
    if status == 400:
        return on_400(message, status_code=status)
    return ValidationError(message, status_code=status, errors=errors)


def data_of(response: httpx.Response, *, on_400: type[ValidationError]) -> Any:
    """The envelope's ``data`` of a successful answer; otherwise raise what went wrong."""
    if response.is_success:
        try:
            return response.json().get("data")
        except (ValueError, AttributeError) as exc:
            raise ServerError(
                "The server's answer is not a Paradarum envelope.", status_code=response.status_code
            ) from exc
    raise error_for(response, on_400=on_400)


def parse(cls: type[T], data: Any) -> T:
    """``data`` as the shape ``cls``; an answer that does not fit is a :class:`ServerError`."""
    try:
        return from_wire(cls, data)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ServerError(
            f"The server's answer is not what this client understands ({exc})."
        ) from exc


def line_item(call: Call[T], line: str) -> T:
    """One line of an NDJSON answer, read as ``call`` says."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ServerError("A line of the server's answer is not JSON.") from exc
    return call.read(data)


def parse_list(cls: type[T], data: Any) -> list[T]:
    if not isinstance(data, list):
        raise ServerError("The server's answer is not a list.")
    return [parse(cls, item) for item in data]


# What a key just created is (never used, not revoked), for a server whose create
# answer leaves those fields out.
_NEW_KEY = {
    "lastUsedAt": None,
    "lastUsedFrom": None,
    "lastUsedUserAgent": None,
    "isRevoked": False,
    "revokedAt": None,
}


def parse_new_key(data: Any) -> NewKey:
    return parse(NewKey, {**_NEW_KEY, **data} if isinstance(data, dict) else data)


def parse_purge(data: Any) -> Purge:
    # The 202 that queues a purge has no completedAt: the purge has only just begun.
    return parse(Purge, {"completedAt": None, **data} if isinstance(data, dict) else data)


# -- the endpoints: each request defined once ----------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request of the API and how its answer's ``data`` is read: built here, sent
    by either client's own I/O (``Client._call``, ``AsyncClient._call``)."""

    method: str
    path: str
    read: Callable[[Any], T]
    json: Any = None
    params: dict[str, Any] | None = None
    # What a bare 400 (without field errors) means for this request.
    on_400: type[ValidationError] = ValidationError
    # False for a sign-in step: its 429 is raised at once (each try counts).
    retry_limited: bool = True
    # The answer is NDJSON, not an envelope: ``read`` reads each line's object, and the
    # client hands them out as they arrive (``Client._each``), never holding them all.
    lines: bool = False


def one(cls: type[T]) -> Callable[[Any], T]:
    return lambda data: parse(cls, data)


def many(cls: type[T]) -> Callable[[Any], list[T]]:
    return lambda data: parse_list(cls, data)


def _paged(cursor: str | None, **params: Any) -> dict[str, Any]:
    return {**params, "cursor": cursor} if cursor else params


def get_account() -> Call[Account]:
    return Call("GET", "/api/account", one(Account))


def exchange_oidc_token(id_token: str, policy_id: int | None) -> Call[OidcKey]:
    body = to_wire(OidcTokenIn(token=id_token, policy_id=policy_id))
    return Call("POST", "/api/oidc/token", one(OidcKey), json=body)


class KeySettings(TypedDict, total=False):
    """A new key's settings (``Keys.create``), each optional: without them the key has
    full access to the account and never expires.

    ``expires_at``: a moment (naive means UTC, as everywhere in this client), a
    ``date`` (the key works through that day, UTC: the panel's rule too) or a
    ``timedelta`` from now (this machine's clock; the server checks the result
    against its own), at most 366 days ahead. ``allowed_cidrs``: the only networks it
    may be used from. ``purge_only``: purges (and ``account()``) only. ``zone_ids``:
    the only zones it may purge.
    """

    expires_at: datetime | date | timedelta | None
    allowed_cidrs: Iterable[str] | None
    purge_only: bool
    zone_ids: Iterable[int] | None


def create_key(name: str, **settings: Unpack[KeySettings]) -> Call[NewKey]:
    """A key create, with only the settings given in its body, so that a key created
    without them is exactly the plain key of before."""
    # A misspelt setting must not quietly give a key with fewer restrictions.
    unknown = settings.keys() - KeySettings.__optional_keys__
    if unknown:
        raise TypeError(f"unknown key setting(s): {', '.join(sorted(unknown))}")
    expires_at = settings.get("expires_at")
    allowed_cidrs = settings.get("allowed_cidrs")
    zone_ids = settings.get("zone_ids")
    if isinstance(expires_at, timedelta):
        expires_at = datetime.now(UTC) + expires_at
    elif isinstance(expires_at, date) and not isinstance(expires_at, datetime):
        expires_at = end_of_day(expires_at)
    body = NewKeyIn(
        name=name,
        expires_at=expires_at,
        allowed_cidrs=None if allowed_cidrs is None else as_list(allowed_cidrs),
        permissions="purge" if settings.get("purge_only") else "full",
        zone_ids=None if zone_ids is None else [int(zone_id) for zone_id in zone_ids],
    )
    path = "/api/account/apikeys"
    return Call("POST", path, parse_new_key, json=to_wire(body), on_400=LimitError)


def roll_key(key_id: int, grace: timedelta | int) -> Call[NewKey]:
    body = to_wire(RollIn(grace_period_minutes=grace_minutes(grace)))
    return Call("POST", f"/api/account/apikeys/{int(key_id)}/roll", parse_new_key, json=body)


def key_usage(key_id: int) -> Call[KeyUsage]:
    return Call("GET", f"/api/account/apikeys/{int(key_id)}/usage", one(KeyUsage))


def list_keys(status: str, cursor: str | None = None) -> Call[list[ApiKey]]:
    params = _paged(cursor, status=status)
    return Call("GET", "/api/account/apikeys", many(ApiKey), params=params)


def revoke_key(key_id: int) -> Call[ApiKey]:
    path = f"/api/account/apikeys/{int(key_id)}"
    return Call("DELETE", path, one(ApiKey), on_400=AlreadyRevokedError)


def add_zone(hostname: str) -> Call[Zone]:
    body = to_wire(ZoneIn(hostname=hostname))
    return Call("POST", "/api/account/zones", one(Zone), json=body)


def list_zones(cursor: str | None = None) -> Call[list[Zone]]:
    return Call("GET", "/api/account/zones", many(Zone), params=_paged(cursor))


def verify_zone(zone_id: int) -> Call[Zone]:
    return Call("POST", f"/api/account/zones/{int(zone_id)}/verify", one(Zone))


def delete_zone(zone_id: int) -> Call[Zone]:
    return Call("DELETE", f"/api/account/zones/{int(zone_id)}", one(Zone))


def purge(body: PurgeIn) -> Call[Purge]:
    return Call("POST", "/api/account/purge", parse_purge, json=to_wire(body))


def purge_urls(urls: str | Iterable[str]) -> Call[Purge]:
    return purge(PurgeIn(urls=as_list(urls)))


def purge_tags(tags: str | Iterable[str]) -> Call[Purge]:
    return purge(PurgeIn(tags=as_list(tags)))


def purge_everything() -> Call[Purge]:
    return purge(PurgeIn(everything=True))


def list_purges(limit: int, cursor: str | None = None) -> Call[list[Purge]]:
    params = _paged(cursor, limit=limit)
    return Call("GET", "/api/account/purges", many(Purge), params=params)


def get_purge(purge_id: int) -> Call[Purge]:
    return Call("GET", f"/api/account/purges/{int(purge_id)}", one(Purge))


# The events an endpoint may subscribe to, from the one definition of them.
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = get_args(WebhookEvent)


def webhook_events(events: str | Iterable[str]) -> list[WebhookEvent]:
    """``events`` as the API takes them, or :class:`ValidationError` naming the ones
    that are not events (and those that are) before anything is sent."""
    given = as_list(events)
    unknown = [event for event in given if event not in WEBHOOK_EVENTS]
    if unknown:
        named = ", ".join(repr(event) for event in unknown)
        problem = f"Not an event: {named}. Events: {', '.join(WEBHOOK_EVENTS)}."
        raise ValidationError(problem, errors={"events": [problem]})
    return cast(list[WebhookEvent], given)


def create_webhook(url: str, events: str | Iterable[str]) -> Call[NewWebhook]:
    body = to_wire(WebhookIn(url=url, events=webhook_events(events)))
    return Call("POST", "/api/account/webhooks", one(NewWebhook), json=body)


def list_webhooks() -> Call[list[Webhook]]:
    return Call("GET", "/api/account/webhooks", many(Webhook))


def _webhook(webhook_id: int) -> str:
    return f"/api/account/webhooks/{int(webhook_id)}"


def get_webhook(webhook_id: int) -> Call[Webhook]:
    return Call("GET", _webhook(webhook_id), one(Webhook))


def update_webhook(
    webhook_id: int,
    *,
    url: str | None,
    events: Iterable[str] | None,
    enabled: bool | None,
) -> Call[Webhook]:
    """Only what is given is sent: the rest stays as it is."""
    body = WebhookUpdateIn(
        url=url, events=None if events is None else webhook_events(events), enabled=enabled
    )
    return Call("PATCH", _webhook(webhook_id), one(Webhook), json=to_wire(body))


def delete_webhook(webhook_id: int) -> Call[Webhook]:
    return Call("DELETE", _webhook(webhook_id), one(Webhook))


def roll_webhook_secret(webhook_id: int, grace: timedelta | int | None) -> Call[NewWebhook]:
    """A new secret; the previous one signs too for ``grace`` (None: the server's
    default, a day; 0: it stops now), checked as a key roll's grace period is."""
    body = (
        WebhookRollIn()
        if grace is None
        else WebhookRollIn(grace_period_minutes=grace_minutes(grace))
    )
    path = f"{_webhook(webhook_id)}/roll"
    return Call("POST", path, one(NewWebhook), json=to_wire(body))


def list_deliveries(
    webhook_id: int, limit: int, cursor: str | None = None
) -> Call[list[WebhookDelivery]]:
    path = f"{_webhook(webhook_id)}/deliveries"
    return Call("GET", path, many(WebhookDelivery), params=_paged(cursor, limit=limit))


def resend_delivery(webhook_id: int, delivery_id: int) -> Call[WebhookDelivery]:
    path = f"{_webhook(webhook_id)}/deliveries/{int(delivery_id)}/resend"
    return Call("POST", path, one(WebhookDelivery))


def export_audit_log(since: datetime | date | None) -> Call[AuditEvent]:
    """The security log from ``since`` on (all of it: None), oldest first, one entry per
    NDJSON line. A naive ``datetime`` is UTC; a ``date`` is the start of that day, UTC."""
    params: dict[str, Any] = {}
    if isinstance(since, date) and not isinstance(since, datetime):
        since = datetime(since.year, since.month, since.day, tzinfo=UTC)
    if since is not None:
        params["since"] = rfc3339(since)
    path = "/api/account/audit-log/export"
    return Call("GET", path, one(AuditEvent), params=params or None, lines=True)


def list_accounts() -> Call[list[AccountMembership]]:
    return Call("GET", "/api/accounts", many(AccountMembership))


def switch_account(account_id: int) -> Call[Session]:
    body = to_wire(SwitchIn(account_id=int(account_id)))
    return Call("POST", "/api/auth/switch", one(Session), json=body)


def accept_invitation(token: str) -> Call[AccountMembership]:
    body = to_wire(InvitationTokenIn(token=token))
    return Call("POST", "/api/invitations/accept", one(AccountMembership), json=body)


def list_members() -> Call[list[Member]]:
    return Call("GET", "/api/account/members", many(Member))


def invite(email: str, role: str) -> Call[Invitation]:
    body = to_wire(InvitationIn(email=email, role=role))
    return Call("POST", "/api/account/invitations", one(Invitation), json=body)


def list_invitations() -> Call[list[Invitation]]:
    return Call("GET", "/api/account/invitations", many(Invitation))


def withdraw_invitation(invitation_id: int) -> Call[Invitation]:
    return Call("DELETE", f"/api/account/invitations/{int(invitation_id)}", one(Invitation))


def set_role(member_id: int, role: str) -> Call[Member]:
    body = to_wire(RoleIn(role=role))
    return Call("PATCH", f"/api/account/members/{int(member_id)}", one(Member), json=body)


def remove_member(member_id: int, keys: Literal["keep", "revoke"]) -> Call[Member]:
    body = to_wire(RemoveMemberIn(keys=keys))
    return Call("DELETE", f"/api/account/members/{int(member_id)}", one(Member), json=body)


# -- two-factor sign-in ------------------------------------------------------------------


def signed_in(data: Any) -> Session | SignInChallenge:
    """A sign-in's answer: the session, or the challenge of its second step."""
    if isinstance(data, dict) and data.get("twoFactorRequired") is True:
        return parse(SignInChallenge, data)
    return parse(Session, data)


def session_of(answer: Session | SignInChallenge) -> Session:
    """The session of a sign-in's answer; :class:`TwoFactorRequired` for a challenge."""
    if isinstance(answer, SignInChallenge):
        raise TwoFactorRequired(answer)
    return answer


def login(email: str, password: str) -> Call[Session | SignInChallenge]:
    body = to_wire(CredentialsIn(email=email, password=password))
    return Call("POST", "/api/auth/login", signed_in, json=body, retry_limited=False)


def login_with_link(token: str) -> Call[Session]:
    body = to_wire(EmailTokenIn(token=token))
    return Call(
        "POST",
        "/api/auth/login/link",
        lambda data: session_of(signed_in(data)),
        json=body,
        retry_limited=False,
    )


def forgot_password(email: str) -> Call[None]:
    body = to_wire(EmailIn(email=email))
    return Call("POST", "/api/auth/password/forgot", _nothing, json=body, retry_limited=False)


def reset_password(token: str, password: str) -> Call[None]:
    body = to_wire(PasswordResetIn(token=token, password=password))
    return Call("POST", "/api/auth/password/reset", _nothing, json=body)


def logout() -> Call[None]:
    return Call("POST", "/api/auth/logout", _nothing)


def login_two_factor(
    challenge: str, *, code: str | None, recovery_code: str | None
) -> Call[Session]:
    """The second step of a sign-in: one answer, a code or a recovery code."""
    if (code is None) == (recovery_code is None):
        raise ValidationError(
            "Give a code of the authenticator app or a recovery code (one of them).",
            errors={"code": ["Give a code or a recovery code."]},
        )
    body = to_wire(TwoFactorSignInIn(challenge=challenge, code=code, recovery_code=recovery_code))
    return Call("POST", "/api/auth/login/two-factor", one(Session), json=body, retry_limited=False)


def reauthenticate(password: str, *, code: str | None, recovery_code: str | None) -> Call[Session]:
    body = to_wire(ReauthenticateIn(password=password, code=code, recovery_code=recovery_code))
    return Call("POST", "/api/auth/reauthenticate", one(Session), json=body, retry_limited=False)


def require_two_factor(required: bool) -> Call[Account]:
    body = to_wire(AccountSettingsIn(require_two_factor=required))
    return Call("PATCH", "/api/account", one(Account), json=body)


def two_factor_status() -> Call[TwoFactorStatus]:
    return Call("GET", "/api/account/two-factor", one(TwoFactorStatus))


def start_totp() -> Call[TotpEnrolment]:
    return Call("POST", "/api/account/two-factor/totp", one(TotpEnrolment))


def _codes(data: Any) -> list[str]:
    return parse(RecoveryCodes, data).recovery_codes


def confirm_totp(code: str) -> Call[list[str]]:
    body = to_wire(CodeIn(code=code))
    return Call("POST", "/api/account/two-factor/totp/confirm", _codes, json=body)


def _nothing(data: Any) -> None:
    return None


def disable_totp(code: str) -> Call[None]:
    body = to_wire(CodeIn(code=code))
    return Call("DELETE", "/api/account/two-factor/totp", _nothing, json=body)


def renew_recovery_codes() -> Call[list[str]]:
    return Call("POST", "/api/account/two-factor/recovery-codes", _codes)


def remove_passkey(passkey_id: int) -> Call[None]:
    path = f"/api/account/two-factor/passkeys/{int(passkey_id)}"
    return Call("DELETE", path, _nothing)


# -- what both clients hold ---------------------------------------------------------


class BaseClient:
    """Configuration, headers and the retry decision: everything but the I/O."""

    def __init__(
        self,
        api_key: str | None,
        *,
        token: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        key_source = ""
        if api_key is None and token is None:
            api_key = os.environ.get(KEY_VARIABLE) or None
            key_source = f" ({KEY_VARIABLE})"
        if api_key is not None and token is not None:
            raise ConfigurationError("Give an API key or a session token, not both.")
        url_source = ""
        if base_url is None:
            base_url = os.environ.get(URL_VARIABLE) or None
            url_source = f" ({URL_VARIABLE})"
        self.base_url = check_base_url(base_url or DEFAULT_BASE_URL, source=url_source)
        if api_key is not None:
            check_api_key(api_key, source=key_source)
        if token:
            check_token(token)
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._credential = api_key if api_key is not None else token
        self._credential_kind = (
            "api key" if api_key is not None else "session token" if token else None
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"paradarum-python/{__version__}"}
        if self._credential:
            headers["Authorization"] = f"Bearer {self._credential}"
        return headers

    def _delay(
        self, response: httpx.Response, attempt: int, *, retry_limited: bool = True
    ) -> float | None:
        """Seconds to wait before retrying ``response``, or None to give up now.
        ``retry_limited=False``: a 429 is answered at once (a sign-in refused after
        failures: sending the same password again later only counts one more)."""
        retried = (429, 503) if retry_limited else (503,)
        if response.status_code not in retried or attempt >= self.max_retries:
            return None
        delay = retry_after(response)
        if delay is None:
            delay = float(2**attempt)
        return delay if delay <= self.max_retry_wait else None

    def _unreachable(self, exc: httpx.RequestError) -> NetworkError:
        if isinstance(exc, httpx.TimeoutException):
            return NetworkError(f"No answer from {self.base_url} in time.")
        reason = str(exc).strip() or type(exc).__name__
        return NetworkError(f"Cannot reach {self.base_url}: {reason}.")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"credential={self._credential_kind or 'none'})"
        )
