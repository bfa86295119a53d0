"""What a key limited to some zones may reach: the one place that rule lives.

A key created with ``zoneIds`` acts **only within those zones**. Precisely:

* **zones**: it lists, verifies and deletes only its own zones (``zoneIds``); it
  cannot add a zone (a new zone lies outside its set by definition);
* **keys**: it lists, revokes and reads the usage of only the keys that are confined
  within its zones themselves (keys whose ``zoneIds`` are all among its own, itself
  included); a key without ``zoneIds`` reaches every zone, so it is outside. It never
  creates or rolls keys (``RestrictedKey``, for any restriction);
* **security log**: it reads only the entries about its zones (``zone.*``, by the zone
  they name) and about the keys it may see (their creation, use, refusals,
  revocation, and the purges made with them); sign-ins, password changes and other
  keys' entries are outside;
* **purges**: only within its zones (``services/purges.py`` confines them to
  ``principal.zone_ids``); it lists and reads only the purges made with the keys it
  may see (a purge made with a session, or another key, may name other zones);

Anything else outside its zones is ``403`` naming the limit; lists simply leave out
what is outside. Sessions and keys without ``zoneIds`` reach the whole account. The
services ask this module, never the routes, so a permission table (roles) can take
these checks over in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, false, or_, select

from paradarum.db.tables import api_keys, audit_events, purges, zones
from paradarum.errors import Forbidden
from paradarum.services.context import Principal


class OutsideKeyZones(Forbidden):
    message = (
        "This key is limited to some zones, and this is outside them: use the panel, "
        "or a key without that limit."
    )


class ConfinedKeyCannotAddZones(Forbidden):
    message = (
        "A key limited to some zones cannot add zones: use the panel, or a key without that limit."
    )


def confined(principal: Principal) -> bool:
    """True for a key limited to some zones."""
    return principal.zone_ids is not None


def require_account_wide(principal: Principal) -> None:
    """Adding a zone: not for a key limited to some zones."""
    if confined(principal):
        raise ConfinedKeyCannotAddZones


def require_zone(principal: Principal, zone_id: int) -> None:
    """Verifying or deleting zone ``zone_id``: within the key's zones, or 403."""
    if principal.zone_ids is not None and zone_id not in principal.zone_ids:
        raise OutsideKeyZones


def zone_filter(principal: Principal) -> ColumnElement[bool] | None:
    """The zones the caller may see (None: every zone of the account)."""
    if principal.zone_ids is None:
        return None
    return zones.c.id.in_(list(principal.zone_ids))


def _within(key_zone_ids: Any, allowed: Sequence[int]) -> bool:
    if not key_zone_ids:
        return False  # a key without zoneIds reaches every zone
    return set(json.loads(key_zone_ids)) <= set(allowed)


def visible_key_ids(conn: Connection, principal: Principal) -> list[int] | None:
    """The keys the caller may see and manage (None: every key of the account)."""
    if principal.zone_ids is None:
        return None
    rows = conn.execute(
        select(api_keys.c.id, api_keys.c.zone_ids).where(
            api_keys.c.account_id == principal.account_id, api_keys.c.zone_ids.is_not(None)
        )
    ).all()
    return [row.id for row in rows if _within(row.zone_ids, principal.zone_ids)]


def key_filter(conn: Connection, principal: Principal) -> ColumnElement[bool] | None:
    ids = visible_key_ids(conn, principal)
    return None if ids is None else api_keys.c.id.in_(ids)


def require_key(conn: Connection, principal: Principal, key_id: int) -> None:
    """Revoking, or reading the usage of, key ``key_id``: within the caller's zones, or
    403. (A key of another account is the caller's 404, checked by the service.)"""
    ids = visible_key_ids(conn, principal)
    if ids is not None and key_id not in ids:
        raise OutsideKeyZones


def audit_filter(conn: Connection, principal: Principal) -> ColumnElement[bool] | None:
    """The security-log entries the caller may read (None: all of the account's)."""
    if principal.zone_ids is None:
        return None
    ids = visible_key_ids(conn, principal) or []
    conditions = [audit_events.c.zone_id.in_(list(principal.zone_ids))]
    if ids:
        conditions.append(audit_events.c.key_id.in_(ids))
    return or_(*conditions) if conditions else false()


def purge_filter(conn: Connection, principal: Principal) -> ColumnElement[bool] | None:
    """The purges the caller may list (None: all of the account's)."""
    ids = visible_key_ids(conn, principal)
    if ids is None:
        return None
    return purges.c.key_id.in_(ids) if ids else false()


def require_purge(conn: Connection, principal: Principal, key_id: int | None) -> None:
    """Reading a purge made with key ``key_id`` (None: a session): a key the caller
    may see, or 403."""
    ids = visible_key_ids(conn, principal)
    if ids is not None and key_id not in ids:
        raise OutsideKeyZones
