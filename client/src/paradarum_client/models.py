"""The shapes of the Paradarum API, one dataclass per shape.

These are the contract: the server builds its answers from them, ``/openapi.json``
describes them, and the client parses answers into them. Attributes are
snake_case; on the wire each one is camelCase (``key_prefix`` ↔ ``keyPrefix``).
Timestamps are aware UTC datetimes here and RFC 3339 with milliseconds and a
``Z`` on the wire (``2026-11-27T09:14:03.512Z``).

A shape may gain fields in later versions; :func:`from_wire` ignores fields it
does not know, so an older client keeps working against a newer server.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

T = TypeVar("T")

C = TypeVar("C", bound=type)


@typing.dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def shape(cls: C) -> C:
    """A shape: a frozen, keyword-only dataclass with slots."""
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)  # type: ignore[return-value]


# -- the shapes ---------------------------------------------------------------------


@shape
class Health:
    status: str


@shape
class NewAccount:
    """An account just signed up."""

    id: int
    email: str
    created_at: datetime


Role = Literal["owner", "admin", "developer", "purger", "viewer"]


@shape
class Account:
    """Who the credential belongs to (``GET /api/account``)."""

    id: int
    email: str
    created_at: datetime
    active_keys: int
    key_limit: int
    # False until the address is verified, where the server asks for that.
    email_verified: bool
    # The account's name, and the role of the member the credential acts for.
    name: str | None = None
    role: Role | None = None


@shape
class Session:
    """A panel session: the token is a JWT, sent as ``Authorization: Bearer``."""

    token: str = field(repr=False)
    token_type: str
    expires_at: datetime


@shape
class CreatedBy:
    """Who created a key: a member (``member_id``, ``email``; they may have left the
    account since), or another key (by its prefix)."""

    kind: Literal["member", "key", "session"]
    key_prefix: str | None
    member_id: int | None = None
    email: str | None = None


@shape
class ApiKey:
    """A key as listed: never the key itself, never its hash.

    ``status`` is ``active``, ``expired`` or ``revoked``; ``revoked_reason`` is
    ``user``, ``leaked`` (``revoked_detail`` says where it was found) or ``rolled``.
    ``permissions`` is ``full`` or ``purge``; ``allowed_cidrs`` and ``zone_ids`` are
    None when the key is not restricted that way.
    """

    id: int
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_from: str | None
    last_used_user_agent: str | None
    is_revoked: bool
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]
    expires_at: datetime | None
    revoked_reason: Literal["user", "leaked", "rolled", "member"] | None
    revoked_detail: str | None
    permissions: Literal["full", "purge"]
    allowed_cidrs: list[str] | None
    zone_ids: list[int] | None
    created_by: CreatedBy
    replaces: int | None


@shape
class NewKey(ApiKey):
    """A key just created: ``key`` is in this answer only, and left out of ``repr()``."""

    key: str = field(repr=False)


@shape
class DayUsage:
    """One UTC day of a key's use: requests it made, and requests refused with it."""

    day: date
    successes: int
    refusals: int


@shape
class KeyUsage:
    """A key's daily use, oldest day first, today last (zeros included)."""

    key_id: int
    days: list[DayUsage]


@shape
class AuditEvent:
    """One entry of the security log."""

    id: int
    event: str
    occurred_at: datetime
    actor_type: Literal["session", "key", "anonymous", "system"]
    actor_id: str | None
    key_id: int | None
    key_prefix: str | None
    client_address: str | None
    user_agent: str | None
    detail: str | None
    # Who did it: a member's email, a key's prefix, "github" or "system" (None: an
    # anonymous attempt, such as a failed sign-in).
    actor: str | None = None


@shape
class AccountMembership:
    """An account the signed-in person belongs to (``GET /api/accounts``)."""

    id: int
    name: str
    role: Role


@shape
class Member:
    """A member of the account (``GET /api/account/members``)."""

    id: int
    email: str
    role: Role
    joined_at: datetime
    two_factor: bool


@shape
class Invitation:
    """A pending invitation to the account."""

    id: int
    email: str
    role: Role
    expires_at: datetime
    created_at: datetime | None = None
    invited_by: str | None = None


@shape
class ZoneVerification:
    """The DNS record that proves the hostname is yours: a TXT record named ``name``
    whose value is ``value``."""

    type: Literal["dns-txt"]
    name: str
    value: str


@shape
class Zone:
    """A hostname of the account. Only ``active`` zones can be purged; a ``pending``
    one waits for its TXT record (``verification``) and a verify; a ``suspended`` one
    lost its record on three daily checks in a row and waits for a verify again."""

    id: int
    hostname: str
    status: Literal["pending", "active", "suspended"]
    verification: ZoneVerification
    created_at: datetime
    verified_at: datetime | None


@shape
class PurgeNode:
    """One cache node's part of a purge: ``node`` is its label (``node-1``, …) and
    ``last_error`` a short reason; addresses and raw errors stay in the server's log."""

    node: str
    status: Literal["queued", "done", "failed"]
    attempts: int
    last_error: str | None
    updated_at: datetime
    next_attempt_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@shape
class Purge:
    """A purge request and each cache node's result (``[]``: the server has no cache
    node, so nothing was sent)."""

    id: int
    kind: Literal["urls", "tags", "everything"]
    targets: list[str]
    status: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    completed_at: datetime | None
    nodes: list[PurgeNode] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@shape
class PurgeScope:
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


# -- the wire -----------------------------------------------------------------------


def wire_name(attribute: str) -> str:
    """``key_prefix`` → ``keyPrefix``."""
    first, *rest = attribute.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


@functools.lru_cache(maxsize=4096)  # a server writes the same createdAt again and again
def rfc3339(moment: datetime | None) -> str | None:
    """``2026-11-27T09:14:03.512Z``: UTC, milliseconds, a ``Z`` suffix."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat is several times cheaper than strftime, and this runs per response.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat("T", "milliseconds") + "Z"


def parse_day(value: str) -> date:
    return date.fromisoformat(value)


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class WireField:
    attribute: str
    name: str
    annotation: Any
    required: bool
    encode: Callable[[Any], Any] | None
    decode: Callable[[Any], Any] | None


def _optional(codec: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``codec`` for a value that may be None (None stays None)."""
    if codec is None:
        return None
    convert = codec
    return lambda value: None if value is None else convert(value)


def _codecs(annotation: Any) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]:
    """How a value of ``annotation`` goes on the wire and comes back (None: as is)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in args if arg is not type(None)]
        encode, decode = _codecs(inner[0]) if len(inner) == 1 else (None, None)
        return _optional(encode), _optional(decode)
    if annotation is datetime:
        return rfc3339, parse_time
    if annotation is date:
        return date.isoformat, parse_day
    if dataclasses.is_dataclass(annotation):
        cls = annotation
        return to_wire, lambda value: from_wire(cls, value)  # type: ignore[arg-type]
    if origin is list and args:
        encode, decode = _codecs(args[0])
        return (
            (lambda values: [encode(value) for value in values]) if encode else None,
            (lambda values: [decode(value) for value in values]) if decode else None,
        )
    return None, None


@functools.cache
def wire_fields(cls: type) -> tuple[WireField, ...]:
    """The fields of a shape as they travel, in declaration order."""
    hints = typing.get_type_hints(cls)
    fields = []
    for item in dataclasses.fields(cls):
        encode, decode = _codecs(hints[item.name])
        required = item.default is dataclasses.MISSING and (
            item.default_factory is dataclasses.MISSING
        )
        fields.append(
            WireField(item.name, wire_name(item.name), hints[item.name], required, encode, decode)
        )
    return tuple(fields)


def to_wire(obj: Any) -> dict[str, Any]:
    """A shape as the JSON object the API sends."""
    data: dict[str, Any] = {}
    for item in wire_fields(type(obj)):  # type: ignore[arg-type]  # a type is hashable
        value = getattr(obj, item.attribute)
        data[item.name] = item.encode(value) if item.encode is not None else value
    return data


def from_wire(cls: type[T], data: dict[str, Any]) -> T:
    """Parse the API's JSON object into ``cls``; fields it does not know are ignored."""
    values: dict[str, Any] = {}
    for item in wire_fields(cls):  # type: ignore[arg-type]  # a type is hashable
        if item.name not in data:
            if item.required:
                raise ValueError(f"the server's answer has no {item.name!r}")
            continue
        value = data[item.name]
        values[item.attribute] = item.decode(value) if item.decode is not None else value
    return cls(**values)
