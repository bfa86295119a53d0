"""The shapes of the Paradarum API, each defined once (msgspec ``Struct``\\ s).

These are the contract. The server validates requests against them and builds its
answers from them, ``/openapi.json`` is their JSON Schema (msgspec's own), and the
client builds its requests and parses answers with them. Attributes are snake_case;
on the wire each one is camelCase (``key_prefix`` ↔ ``keyPrefix``). Timestamps are
aware UTC datetimes here and RFC 3339 with milliseconds and a ``Z`` on the wire
(``2026-11-27T09:14:03.512Z``).

A shape may gain fields in later versions; parsing ignores fields it does not know,
so an older client keeps working against a newer server.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

T = TypeVar("T")

# The largest id (a signed 64-bit integer) and the page sizes every list shares.
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Id = Annotated[int, Meta(ge=1, le=MAX_ID)]
# RFC 3339 on the wire (the server writes UTC with milliseconds and a Z).
Timestamp = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]


class Shape(msgspec.Struct, kw_only=True, rename="camel"):
    """An answer of the API: every field is always sent (null when empty)."""


class Body(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """What a request carries. Types are strict (``123`` is not a name, ``"5"`` not an
    id); unknown fields are ignored; a field left at its default is not sent."""


# -- answers --------------------------------------------------------------------------


class Health(Shape):
    status: str


class Readiness(Shape):
    """A ready process: ``jobs`` counts the job queue's rows by kind and state
    (``queued``, ``running``, ``done``, ``failed``), at most a few seconds old;
    null when they could not be read at once (readiness does not wait for them)."""

    status: str
    jobs: dict[str, dict[str, int]] | None


class NewAccount(Shape):
    """An account just signed up."""

    id: int
    email: str
    created_at: Timestamp


Role = Literal["owner", "admin", "developer", "purger", "viewer"]


class Account(Shape):
    """Who the credential belongs to (``GET /api/account``)."""

    id: int
    email: str
    created_at: Timestamp
    active_keys: int
    key_limit: int
    # False until the address is verified, where the server asks for that.
    email_verified: bool
    # The account's name, and the role of the member the credential acts for.
    name: str | None = None
    role: Role | None = None
    # Whether the account requires a second factor of every member.
    require_two_factor: bool | None = None


class Session(Shape):
    """A panel session: the token is a JWT, sent as ``Authorization: Bearer``."""

    token: str
    token_type: str
    expires_at: Timestamp

    def __repr__(self) -> str:  # the token is a credential: never in a repr
        return f"Session(token_type={self.token_type!r}, expires_at={self.expires_at!r})"


SecondFactor = Literal["totp", "passkey", "recoveryCode"]


class SignInChallenge(Shape):
    """The answer of a right password when the person has a second factor on: no
    session yet. Answer ``challenge`` (valid 5 minutes, once; 5 wrong answers end
    it) at ``POST /api/auth/login/two-factor`` with one of ``methods``."""

    two_factor_required: Literal[True]
    challenge: str
    methods: list[SecondFactor]
    expires_at: Timestamp

    def __repr__(self) -> str:  # the challenge stands for a right password
        return f"SignInChallenge(methods={self.methods!r}, expires_at={self.expires_at!r})"


class TotpEnrolment(Shape):
    """A TOTP secret being set up: put it in an authenticator app (the URI, or the
    QR code: an SVG ``data:`` URI), then confirm with the first code."""

    secret: str
    otpauth_uri: str
    qr_code: str

    def __repr__(self) -> str:
        return "TotpEnrolment(secret=…)"


class RecoveryCodes(Shape):
    """One-time codes that stand in for a lost second factor, shown this once."""

    recovery_codes: list[str]

    def __repr__(self) -> str:
        return f"RecoveryCodes({len(self.recovery_codes)} codes)"


class Passkey(Shape):
    """A passkey (WebAuthn credential) registered as a second factor."""

    id: int
    name: str
    created_at: Timestamp
    last_used_at: Timestamp | None


class NewPasskey(Passkey):
    """A passkey just registered; ``recovery_codes`` when it is the person's first
    second factor (shown this once), else null."""

    recovery_codes: list[str] | None = None


class TwoFactorStatus(Shape):
    """The signed-in person's second factors, and whether the account requires one."""

    totp: bool
    passkeys: list[Passkey]
    recovery_codes_left: int
    required: bool


class PasskeyOptions(Shape):
    """WebAuthn options for ``navigator.credentials`` (``public_key``, JSON as the
    WebAuthn JSON helpers take it) and the ``challenge`` to send back with the answer."""

    challenge: str | None
    public_key: dict[str, Any]


class CreatedBy(Shape):
    """Who created a key: a member (``member_id``, ``email``; they may have left the
    account since), another key (by its prefix), or a CI job through a trust policy
    (``oidc``: ``policy_id`` and the token's ``subject``)."""

    kind: Literal["member", "key", "session", "oidc"]
    key_prefix: str | None
    member_id: int | None = None
    email: str | None = None
    policy_id: int | None = None
    subject: str | None = None


class ApiKey(Shape):
    """A key as listed: never the key itself, never its hash.

    ``status`` is ``active``, ``expired`` or ``revoked``; ``revoked_reason`` is
    ``user``, ``leaked`` (``revoked_detail`` says where it was found), ``rolled`` or
    ``policy`` (minted by a trust policy that was deleted).
    ``permissions`` is ``full`` or ``purge``; ``allowed_cidrs`` and ``zone_ids`` are
    None when the key is not restricted that way.
    """

    id: int
    name: str
    key_prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    last_used_from: str | None
    last_used_user_agent: str | None
    is_revoked: bool
    revoked_at: Timestamp | None
    status: Literal["active", "expired", "revoked"]
    expires_at: Timestamp | None
    revoked_reason: Literal["user", "leaked", "rolled", "member", "policy"] | None
    revoked_detail: str | None
    permissions: Literal["full", "purge"]
    allowed_cidrs: list[str] | None
    zone_ids: list[int] | None
    created_by: CreatedBy
    replaces: int | None


class NewKey(ApiKey):
    """A key just created: ``key`` is in this answer only, and left out of ``repr()``."""

    key: str

    def __repr__(self) -> str:
        return f"NewKey(id={self.id!r}, name={self.name!r}, key_prefix={self.key_prefix!r})"


class TrustPolicy(Shape):
    """Which CI jobs may trade their OpenID Connect ID token for a short-lived key:
    tokens of ``issuer`` for ``audience`` whose claims equal ``conditions``.
    ``active_keys``: keys it minted that work now."""

    id: int
    name: str
    issuer: str
    audience: str
    conditions: dict[str, str]
    permissions: Literal["full", "purge"]
    zone_ids: list[int] | None
    ttl_seconds: int
    created_at: Timestamp
    active_keys: int


class OidcKey(Shape):
    """A key minted for a CI job (``POST /api/oidc/token``): ``key`` is in this
    answer only, and it stops working at ``expires_at``."""

    key: str
    key_prefix: str
    expires_at: Timestamp
    policy_id: int

    def __repr__(self) -> str:  # the key is a credential: never in a repr
        return f"OidcKey(key_prefix={self.key_prefix!r}, policy_id={self.policy_id!r})"


WebhookEvent = Literal[
    "api_key.created",
    "api_key.revoked",
    "api_key.leaked",
    "api_key.expiring",
    "api_key.expired",
    "api_key.rolled",
    "member.joined",
    "member.removed",
    "zone.verified",
]


class Webhook(Shape):
    """A webhook endpoint: where the account's events are sent, signed as the Standard
    Webhooks specification says. ``enabled`` is false when paused, or when Paradarum
    disabled it after a day of failed deliveries (``disabled_at``,
    ``disabled_reason``); ``failing_since`` is its first failure since the last
    success. ``previous_secret_expires_at``: after a roll, the previous secret signs
    too until then (null: only the current one signs)."""

    id: int
    url: str
    events: list[WebhookEvent]
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp
    disabled_at: Timestamp | None
    disabled_reason: str | None
    failing_since: Timestamp | None
    previous_secret_expires_at: Timestamp | None


class NewWebhook(Webhook):
    """An endpoint with its signing secret (``whsec_...``): in this answer only (at
    creation and at a roll), and left out of ``repr()``."""

    secret: str

    def __repr__(self) -> str:
        return f"NewWebhook(id={self.id!r}, url={self.url!r}, secret=…)"


class WebhookDelivery(Shape):
    """One message sent (or to be sent) to an endpoint. ``message_id`` is the
    ``webhook-id`` header (the same for a resend); ``payload`` the body sent;
    ``last_error`` why the last attempt failed; ``response_status`` the receiver's
    last HTTP status."""

    id: int
    endpoint_id: int
    message_id: str
    event: str
    status: Literal["queued", "delivered", "failed"]
    attempts: int
    next_attempt_at: Timestamp | None
    last_error: str | None
    response_status: int | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    payload: dict[str, Any]


class DayUsage(Shape):
    """One UTC day of a key's use: requests it made, and requests refused with it."""

    day: date
    successes: int
    refusals: int


class KeyUsage(Shape):
    """A key's daily use, oldest day first, today last (zeros included)."""

    key_id: int
    days: list[DayUsage]


class AuditEvent(Shape):
    """One entry of the security log."""

    id: int
    event: str
    occurred_at: Timestamp
    actor_type: Literal["session", "key", "anonymous", "system", "oidc"]
    actor_id: str | None
    key_id: int | None
    key_prefix: str | None
    client_address: str | None
    user_agent: str | None
    detail: str | None
    # Who did it: a member's email, a key's prefix, "github" or "system" (None: an
    # anonymous attempt, such as a failed sign-in).
    actor: str | None = None


class AccountMembership(Shape):
    """An account the signed-in person belongs to (``GET /api/accounts``)."""

    id: int
    name: str
    role: Role


class Member(Shape):
    """A member of the account (``GET /api/account/members``)."""

    id: int
    email: str
    role: Role
    joined_at: Timestamp
    two_factor: bool


class Invitation(Shape):
    """A pending invitation to the account."""

    id: int
    email: str
    role: Role
    expires_at: Timestamp
    created_at: Timestamp | None = None
    invited_by: str | None = None


class ZoneVerification(Shape):
    """The DNS record that proves the hostname is yours: a TXT record named ``name``
    whose value is ``value``."""

    type: Literal["dns-txt"]
    name: str
    value: str


class Zone(Shape):
    """A hostname of the account. Only ``active`` zones can be purged; a ``pending``
    one waits for its TXT record (``verification``) and a verify; a ``suspended`` one
    lost its record on three daily checks in a row and waits for a verify again."""

    id: int
    hostname: str
    status: Literal["pending", "active", "suspended"]
    verification: ZoneVerification
    created_at: Timestamp
    verified_at: Timestamp | None


class PurgeNode(Shape):
    """One cache node's part of a purge: ``node`` is its label (``node-1``, …) and
    ``last_error`` a short reason; addresses and raw errors stay in the server's log."""

    node: str
    status: Literal["queued", "done", "failed"]
    attempts: int
    last_error: str | None
    updated_at: Timestamp
    next_attempt_at: Timestamp | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class Purge(Shape):
    """A purge request and each cache node's result (``[]``: the server has no cache
    node, so nothing was sent)."""

    id: int
    kind: Literal["urls", "tags", "everything"]
    targets: list[str]
    status: Literal["queued", "running", "done", "failed"]
    created_at: Timestamp
    completed_at: Timestamp | None
    nodes: list[PurgeNode] = msgspec.field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class PurgeScope(Shape):
    """What the calling credential may purge (``GET /api/account/purge/scope``).

    ``credential`` is ``session`` or ``key``; ``key_prefix`` is the key's prefix (None
    for a session); ``zones`` are the active zones it may purge (for a key restricted to
    some zones, those among them); ``covered`` says whether one of them covers
    ``hostname``, the host asked about (both None when none was asked about).
    """

    credential: Literal["session", "key"]
    key_prefix: str | None
    permissions: Literal["full", "purge"]
    zone_restricted: bool
    address_restricted: bool
    zones: list[str]
    hostname: str | None
    covered: bool | None


class ErrorEnvelope(Shape):
    """Every error response. ``errors`` (field → problems) only on invalid fields."""

    succeeded: Literal[False]
    message: str
    data: None
    errors: Annotated[dict[str, list[str]], Meta(min_length=1)] | None = None


# -- requests -------------------------------------------------------------------------
# Field rules that are the server's own, with their own messages (a name's length, the
# password policy), are only described here (``extra_json_schema``): the server says
# what is wrong in its words.


def _described(text: str, **schema: Any) -> Meta:
    return Meta(description=text, extra_json_schema=schema or None)


Email = Annotated[str, Meta(max_length=320, examples=["ada@example.com"])]
Password = Annotated[str, Meta(max_length=1024)]
NewPassword = Annotated[
    str,
    Meta(max_length=1024),
    _described(
        "10 to 1024 characters, no NUL, not a well-known common password, "
        "not containing the email's name part.",
        minLength=10,
    ),
]


class CredentialsIn(Body):
    email: Email
    password: Password


class SignupIn(Body):
    email: Annotated[
        str,
        Meta(max_length=320, examples=["ada@example.com"]),
        _described("Trimmed and lowercased; must be unique.", format="email"),
    ]
    password: NewPassword


class EmailTokenIn(Body):
    token: Annotated[str, Meta(max_length=2000, description="The token from the emailed link.")]


class EmailIn(Body):
    email: Email


class PasswordResetIn(Body):
    token: Annotated[str, Meta(max_length=2000, description="The token from the emailed link.")]
    password: NewPassword


class PasswordChangeIn(Body):
    current_password: Password
    new_password: Annotated[str, Meta(max_length=1024), _described("As for sign-up.", minLength=10)]


Code = Annotated[str, Meta(max_length=20, description="The 6-digit code of the authenticator app.")]
RecoveryCode = Annotated[
    str, Meta(max_length=40, description="One of the recovery codes (works once).")
]
WebAuthnCredential = Annotated[
    dict[str, Any],
    Meta(description="The PublicKeyCredential as JSON (its toJSON(), base64url fields)."),
]
Challenge = Annotated[str, Meta(max_length=200)]


class CodeIn(Body):
    code: Code


class TwoFactorSignInIn(Body):
    """The second step of a sign-in: the challenge and one answer."""

    challenge: Annotated[Challenge, Meta(description="From the sign-in's answer.")]
    code: Code | None = None
    recovery_code: RecoveryCode | None = None
    passkey: WebAuthnCredential | None = None


class ChallengeIn(Body):
    challenge: Annotated[Challenge, Meta(description="From the sign-in's answer.")]


class ReauthenticateIn(Body):
    """The password, and where a second factor is on one answer (a passkey with the
    ``challenge`` of ``POST /api/auth/reauthenticate/passkey-options``)."""

    password: Password
    code: Code | None = None
    recovery_code: RecoveryCode | None = None
    passkey: WebAuthnCredential | None = None
    challenge: Challenge | None = None


class PasskeyIn(Body):
    challenge: Annotated[Challenge, Meta(description="From the registration options.")]
    name: Annotated[str, Meta(max_length=300, description="1-100 characters.", examples=["Laptop"])]
    credential: WebAuthnCredential


class PasskeyNameIn(Body):
    name: Annotated[str, Meta(max_length=300, description="1-100 characters.")]


class AccountSettingsIn(Body):
    require_two_factor: Annotated[
        bool | None,
        Meta(description="Require a second factor of every member (owners only)."),
    ] = None


class NewKeyIn(Body):
    name: Annotated[
        str,
        Meta(max_length=1000, examples=["WordPress purge plugin"]),
        _described(
            "1–100 characters after trimming; no control or invisible characters.",
            minLength=1,
        ),
    ]
    expires_at: Annotated[
        Timestamp | None,
        Meta(description="RFC 3339, in the future, at most 366 days ahead. Leave out: never."),
    ] = None
    permissions: Annotated[
        Literal["full", "purge"],
        Meta(description="`purge`: the purge endpoints and GET /api/account only."),
    ] = "full"
    allowed_cidrs: Annotated[
        Annotated[list[str], Meta(max_length=20)] | None,
        Meta(
            description=(
                "Up to 20 IPv4/IPv6 networks the key may be used from. Leave out: anywhere."
            ),
            examples=[["203.0.113.0/24"]],
        ),
    ] = None
    zone_ids: Annotated[
        Annotated[list[Id], Meta(max_length=100)] | None,
        Meta(description="The zones this key may purge. Leave out: every zone of the account."),
    ] = None


class TrustPolicyIn(Body):
    name: Annotated[
        str,
        Meta(max_length=1000, examples=["acme/site deploy"]),
        _described(
            "1–100 characters after trimming, e.g. the repository and workflow.", minLength=1
        ),
    ]
    issuer: Annotated[
        str,
        Meta(
            max_length=1000,
            description="The `iss` of the tokens, exactly; https:// only.",
            examples=["https://token.actions.githubusercontent.com"],
        ),
    ]
    conditions: Annotated[
        dict[Annotated[str, Meta(max_length=100)], Annotated[str, Meta(max_length=1000)]],
        Meta(
            max_length=20,
            description=(
                "Claims and the exact values the token must carry; at least one of "
                "`sub`, `repository_id`, `repository_owner_id`, `project_id`."
            ),
            examples=[{"repository_id": "123456789", "ref": "refs/heads/main"}],
        ),
    ]
    audience: Annotated[
        Annotated[str, Meta(max_length=1000)] | None,
        Meta(description="The `aud` the tokens must carry. Leave out: this server's public URL."),
    ] = None
    permissions: Annotated[
        Literal["full", "purge"], Meta(description="What the minted keys may do.")
    ] = "purge"
    zone_ids: Annotated[
        Annotated[list[Id], Meta(max_length=100)] | None,
        Meta(description="The zones the minted keys may purge. Leave out: every zone."),
    ] = None
    ttl_seconds: Annotated[
        int, Meta(ge=60, le=3600, description="How long a minted key works: 60 to 3600 s.")
    ] = 900


class OidcTokenIn(Body):
    # No max_length: an oversized token is refused like every other bad token
    # (the same 401), and the body limit bounds it anyway.
    token: Annotated[str, Meta(description="The CI job's OpenID Connect ID token (a JWT).")]
    policy_id: Annotated[
        Id | None,
        Meta(
            description="The trust policy to use; needed only when policies of several "
            "accounts trust the same workload."
        ),
    ] = None


WebhookUrl = Annotated[
    str,
    Meta(
        max_length=4000,
        description=(
            "http:// or https:// (recommended), at most 2000 characters, no user:password@ "
            "or #fragment; its host must resolve to public addresses only."
        ),
        examples=["https://hooks.example.com/paradarum"],
    ),
]
WebhookEvents = Annotated[
    list[WebhookEvent],
    Meta(min_length=1, max_length=20, description="The events to send (at least one)."),
]


class WebhookIn(Body):
    url: WebhookUrl
    events: WebhookEvents


class WebhookUpdateIn(Body):
    """What to change; a field left out stays as it is. ``enabled: true`` also resumes
    an endpoint Paradarum disabled. Changing the URL needs a panel session."""

    url: WebhookUrl | None = None
    events: WebhookEvents | None = None
    enabled: bool | None = None


class WebhookRollIn(Body):
    grace_period_minutes: Annotated[
        int,
        Meta(
            ge=0,
            le=7 * 24 * 60,
            description="How long the previous secret keeps signing as well (0: it stops now).",
        ),
    ] = 24 * 60


class RollIn(Body):
    grace_period_minutes: Annotated[
        int,
        Meta(
            ge=0,
            le=7 * 24 * 60,
            description="How long the old key keeps working (0: revoked at once).",
        ),
    ]


class ZoneIn(Body):
    hostname: Annotated[
        str,
        Meta(max_length=1000, examples=["www.example.com"]),
        _described(
            "A hostname (www.example.com) or a wildcard (*.example.com: every subdomain, "
            "not the apex); no scheme, port or path. Unicode names are stored in punycode.",
            minLength=1,
        ),
    ]


class CredentialsRevokeIn(Body):
    credentials: Annotated[
        list[Annotated[str, Meta(max_length=1000)]],
        Meta(
            min_length=1,
            max_length=1000,
            description=(
                "1–1000 strings found in public; every Paradarum key among them is revoked."
            ),
        ),
    ]


class PurgeIn(Body):
    """Exactly one of the three; the service names the problem otherwise."""

    urls: Annotated[
        list[str] | None,
        Meta(
            description="1–100 absolute http(s) URLs on hosts of your active zones.",
            examples=[["https://www.example.com/blog/hello-world"]],
        ),
    ] = None
    tags: Annotated[
        list[str] | None,
        Meta(
            description="1–100 cache tags, 1–128 visible ASCII characters, no commas.",
            examples=[["product-42"]],
        ),
    ] = None
    everything: Annotated[
        bool | None,
        Meta(description="true to purge everything cached for your active zones."),
    ] = None


class SwitchIn(Body):
    account_id: Annotated[Id, Meta(description="One of the accounts GET /api/accounts lists.")]


class InvitationIn(Body):
    email: Annotated[
        str,
        Meta(max_length=320, examples=["grace@example.com"]),
        _described(
            "Trimmed and lowercased. Only the person who signs in with it can accept.",
            format="email",
        ),
    ]
    # A string here, so that an unknown role gets the service's sentence.
    role: Annotated[
        str,
        Meta(
            max_length=100,
            description="owner (only owners invite owners), admin, developer, purger or viewer.",
            examples=["purger"],
        ),
    ]


class RoleIn(Body):
    role: Annotated[
        str,
        Meta(
            max_length=100,
            description="owner, admin, developer, purger or viewer.",
            examples=["developer"],
        ),
    ]


class RemoveMemberIn(Body):
    keys: Annotated[
        str,
        Meta(
            max_length=100,
            description=(
                '"revoke": the member\'s active keys are revoked; "keep": they keep working, '
                "and the member who removes them vouches for them from now on."
            ),
            examples=["revoke"],
        ),
    ]


class InvitationTokenIn(Body):
    token: Annotated[str, Meta(max_length=2000, description="The token from the invitation link.")]


# -- query strings ----------------------------------------------------------------------


class PageQuery(Body):
    """One page of a list, newest first; the ``Link`` header names the next one."""

    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str, Meta(max_length=200)] | None = None


class KeyListQuery(PageQuery):
    status: Literal["all", "active", "revoked", "expired"] = "all"


class AuditExportQuery(Body):
    since: Annotated[
        Annotated[str, Meta(max_length=64)] | None,
        Meta(
            description=(
                "RFC 3339 with a time zone: entries at or after this moment. "
                "Leave out: the whole log."
            ),
            examples=["2026-11-01T00:00:00Z"],
        ),
    ] = None


class PurgeScopeQuery(Body):
    hostname: Annotated[
        Annotated[str, Meta(max_length=300)] | None,
        Meta(
            description=(
                "A hostname (a port is ignored): the answer says whether you may purge it."
            ),
            examples=["www.example.com"],
        ),
    ] = None


# -- the wire -----------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a server writes the same createdAt again and again
def rfc3339(moment: datetime | None) -> str | None:
    """``2026-11-27T09:14:03.512Z``: UTC, milliseconds, a ``Z`` suffix."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat is several times cheaper than strftime, and this runs per response.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat("T", "milliseconds") + "Z"


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def builtins(obj: Any) -> Any:
    """A shape (or list of shapes) as JSON values, timestamps still ``datetime`` and
    ``date``: the caller's JSON encoder writes them (:func:`rfc3339`) — msgspec's own
    encoder would write microseconds, and the wire has milliseconds."""
    return msgspec.to_builtins(obj, builtin_types=(datetime, date))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {name: _json_value(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def to_wire(obj: Any) -> Any:
    """A shape (or a list of shapes) as the JSON the API sends."""
    return _json_value(builtins(obj))


def from_wire(cls: type[T], data: Any) -> T:
    """Parse the API's JSON value into ``cls``; fields it does not know are ignored.
    An answer that does not fit is a ``ValueError`` (``msgspec.ValidationError``)."""
    return msgspec.convert(data, cls)
