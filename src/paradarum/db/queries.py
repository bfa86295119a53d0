"""The rule that says whether a key can be used, and the statements of the hot path.

Both are built from the table objects (``db/tables.py``), so that the schema, mypy
and a reader see every query of ``api_keys`` in one form:

* :func:`usable_key`: *the* rule, "neither revoked nor expired at this moment", used
  by every service that needs it (the key check, the account summary, key lists,
  limits, members, trust policies);
* :class:`HotQuery`: a SELECT that runs on every request (the key check, the session
  check, ``GET /api/account``). ``Database`` compiles each one once for its dialect
  and driver, when it is made, and runs it through :meth:`Database.hot_read`: a
  prepared statement on PostgreSQL, one row read inline on SQLite.

A hot query takes its values positionally, in the order of :attr:`HotQuery.params`;
the moment it is asked for (``at``) is bound by ``hot_read`` wherever the statement
uses :data:`AT`. On PostgreSQL, reads of one query that arrive together are sent as
one statement (:meth:`HotQuery.batched`; ``db/hotpool.py``'s ``Batcher``). A query
whose answer depends on the moment has :attr:`HotQuery.moments`: columns that say
when part of its answer next changes (or NULL). Only SQLite reads them (they are
added to its statement): its kept rows (``db/hotrows.py``) are reused until the
earliest of them. They are never returned, and PostgreSQL, which keeps nothing, is
not asked for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Select,
    TypeDecorator,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import visitors

from paradarum.db.tables import (
    accounts,
    api_keys,
    memberships,
    passkeys,
    persons,
    revoked_sessions,
    totp_factors,
)
from paradarum.db.types import UTCDateTime

# The moment a hot query is asked for: bound by Database.hot_read.
AT: BindParameter[datetime] = bindparam("at", type_=UTCDateTime())


def usable_key(
    at: datetime | ColumnElement[Any], keys: FromClause = api_keys
) -> ColumnElement[bool]:
    """A key (of ``keys``: the table or an alias of it) that is neither revoked nor
    expired at ``at``: the one rule for "this key works"."""
    return and_(
        keys.c.revoked_at.is_(None),
        or_(keys.c.expires_at.is_(None), keys.c.expires_at > at),
    )


@dataclass(frozen=True, eq=False)
class HotQuery:
    """A hot-path SELECT; see the module's docstring."""

    name: str
    statement: Select[Any]
    # The caller's values, in this order (the moment, ``at``, is not one of them).
    params: tuple[str, ...]
    # When the answer next changes: columns added on SQLite only (not returned).
    moments: tuple[ColumnElement[Any], ...] = ()

    def statement_for(self, dialect: str) -> Select[Any]:
        """The statement as ``dialect`` runs it: with the moment columns on SQLite."""
        if dialect == "sqlite" and self.moments:
            return self.statement.add_columns(*self.moments)
        return self.statement

    def batched(self) -> tuple[Select[Any], tuple[str, ...]] | None:
        """The statement for many reads at once (PostgreSQL), and the names of its
        values in the order it takes them; None for a query without values.

        Each value becomes an array, one element per read; the arrays are unnested
        together WITH ORDINALITY into ``batch(<names>, i)``, and the query, its
        values replaced by ``batch``'s columns, is joined LATERAL to each of those
        rows. So every read is answered exactly as alone (its own moment
        included), and its row comes back with ``i``, its place in the batch
        (first column): a read with no row has none.
        """
        if not self.params:
            return None
        types: dict[str, Any] = {}
        for element in visitors.iterate(self.statement):
            if isinstance(element, BindParameter) and element.key in (*self.params, "at"):
                kind = element.type
                types[element.key] = kind.impl if isinstance(kind, TypeDecorator) else kind
        names = tuple(name for name in (*self.params, "at") if name in types)
        batch = (
            func.unnest(*[bindparam(name, type_=ARRAY(types[name])) for name in names])
            .table_valued(*names, with_ordinality="i")
            .render_derived(name="batch")
        )

        # By name rather than as batch's columns: a nested subquery would otherwise
        # list ``batch`` in its own FROM instead of seeing the lateral row.
        def from_batch(element: Any, **_: Any) -> Any:
            if isinstance(element, BindParameter) and element.key in types:
                return literal_column(f"batch.{element.key}", types[element.key])
            return None

        no_options: dict[str, Any] = {}
        replaced: Any = visitors.replacement_traverse(self.statement, no_options, from_batch)
        one = replaced.lateral("hot")
        return select(batch.c.i, one).select_from(batch.join(one, true())), names


# -- the key check --------------------------------------------------------------------

_other = api_keys.alias("other_keys")
# The key's own answer changes when it expires.
_KEY_EXPIRES = case((api_keys.c.expires_at > AT, api_keys.c.expires_at))
# The key, whether it works now, and the member who vouches for it with their
# current role: a key may do no more than that role allows (services/roles.py).
_KEY_COLUMNS: Sequence[ColumnElement[Any]] = (
    api_keys.c.id,
    api_keys.c.account_id,
    api_keys.c.key_prefix,
    usable_key(AT).label("usable"),
    api_keys.c.last_used_at,
    api_keys.c.permissions,
    api_keys.c.allowed_cidrs,
    api_keys.c.zone_ids,
    memberships.c.id.label("member_id"),
    memberships.c.role,
    memberships.c.person_id,
    persons.c.email,
)
_KEY_FROM = api_keys.outerjoin(memberships, memberships.c.id == api_keys.c.member_id).outerjoin(
    persons, persons.c.id == memberships.c.person_id
)


def _counted(account_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """Keys of the account that count against its limit (not a trust policy's)."""
    return and_(_other.c.account_id == account_id, _other.c.trust_policy_id.is_(None))


def _account_columns(account_id: ColumnElement[Any]) -> tuple[ColumnElement[Any], ...]:
    """What ``GET /api/account`` shows beyond the credential: the account's name and
    creation, and its keys active now (the (account_id, created_at, id) index); then
    the moment that count next changes (its next key to expire)."""
    active = (
        select(func.count())
        .select_from(_other)
        .where(_counted(account_id), usable_key(AT, _other))
        .scalar_subquery()
    )
    next_expiry = (
        select(func.min(_other.c.expires_at))
        .where(_counted(account_id), usable_key(AT, _other), _other.c.expires_at.is_not(None))
        .scalar_subquery()
    )
    return (
        accounts.c.name,
        accounts.c.created_at,
        persons.c.email_verified_at.is_not(None).label("email_verified"),
        active.label("active_keys"),
        accounts.c.require_two_factor,
        next_expiry.label("next_expiry"),
    )


KEY = HotQuery(
    "key",
    select(*_KEY_COLUMNS)
    .select_from(_KEY_FROM)
    .where(api_keys.c.key_hash == bindparam("key_hash")),
    params=("key_hash",),
    moments=(_KEY_EXPIRES,),
)
# The key check and GET /api/account's summary in one statement (one round trip).
_name, _created, _verified, _active, _required, _next = _account_columns(api_keys.c.account_id)
KEY_WITH_ACCOUNT = HotQuery(
    "key with account",
    select(*_KEY_COLUMNS, _name, _created, _verified, _active, _required)
    .select_from(_KEY_FROM.join(accounts, accounts.c.id == api_keys.c.account_id))
    .where(api_keys.c.key_hash == bindparam("key_hash")),
    params=("key_hash",),
    moments=(_KEY_EXPIRES, _next),
)

# -- sessions -------------------------------------------------------------------------

# Whether the person has to enrol first: the account requires a second factor and
# they have none (services/twofactor.py).
_MUST_ENROL = and_(
    accounts.c.require_two_factor,
    ~exists().where(
        totp_factors.c.person_id == persons.c.id, totp_factors.c.confirmed_at.is_not(None)
    ),
    ~exists().where(passkeys.c.person_id == persons.c.id),
).label("must_enrol")
# The person's session key, whether the token was signed out, and the person's
# membership of the token's account: no row once they are removed from it.
SESSION = HotQuery(
    "session",
    select(
        persons.c.session_key,
        exists().where(revoked_sessions.c.token_id == bindparam("token_id")).label("signed_out"),
        memberships.c.id,
        memberships.c.role,
        persons.c.email,
        _MUST_ENROL,
    )
    .select_from(
        persons.join(
            memberships,
            and_(
                memberships.c.person_id == persons.c.id,
                memberships.c.account_id == bindparam("account_id"),
            ),
        ).join(accounts, accounts.c.id == memberships.c.account_id)
    )
    .where(persons.c.id == bindparam("person_id")),
    params=("token_id", "account_id", "person_id"),
)

# GET /api/account for a session: the account, and whether the person's address is
# verified (they are a member: the session check just said so).
_name, _created, _verified, _active, _required, _next = _account_columns(accounts.c.id)
SUMMARY = HotQuery(
    "summary",
    select(accounts.c.id, _name, _created, _verified, _active, _required)
    .select_from(accounts.outerjoin(persons, persons.c.id == bindparam("person_id")))
    .where(accounts.c.id == bindparam("account_id")),
    params=("person_id", "account_id"),
    moments=(_next,),
)

# -- readiness ------------------------------------------------------------------------

MIGRATED = HotQuery(
    "migrated",
    select(column("version_num")).select_from(table("alembic_version", column("version_num"))),
    params=(),
)

HOT_QUERIES = (KEY, KEY_WITH_ACCOUNT, SESSION, SUMMARY, MIGRATED)
