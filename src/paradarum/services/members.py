"""Teams: the accounts a person belongs to, members, roles and invitations.

Rules (each decided in the one transaction of its action, after the account is
held with ``Database.lock_account``, so that member changes of one account queue
behind each other in any process):

* who may do what is :mod:`paradarum.services.roles`, checked with the actor's
  role **as committed** when the action runs: of two admins removing each other
  at once, the second finds it is no longer a member (401) and changes nothing;
* an account always keeps an owner: the last one can be neither demoted nor
  removed, and cannot leave;
* a key never holds more than a current member vouches for: demoting a member
  revokes (reason ``member``) their active keys that the new role could not
  create; removing one revokes their keys or, when kept, hands them to the
  member who removed them (or, when they left, to the first owner) to vouch for;
* an invitation is for one address, for 7 days, once: its link carries a signed
  token (nothing secret is stored); accepting it is a conditional update, so of
  simultaneous acceptances exactly one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, or_, select, update

from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import (
    accounts,
    api_keys,
    invitations,
    memberships,
    passkeys,
    persons,
    totp_factors,
)
from paradarum.errors import (
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from paradarum.ratelimit import Limit, RateLimiter
from paradarum.services import audit, validation, webhooks
from paradarum.services.accounts import AccountService, Session, require_verified
from paradarum.services.apikeys import RevokeReason, active, current_role, revoke_keys
from paradarum.services.context import ClientInfo, CredentialKind, Principal
from paradarum.services.emails import Kind, enqueue, owners_of
from paradarum.services.roles import Action, Role, may, require
from paradarum.tokens import INVITATION, InvalidToken, TokenCodec

INVITATION_LIFETIME = timedelta(days=7)
INVITATIONS_PER_HOUR = 50
INVALID_INVITATION = (
    "This invitation link is invalid, was used or withdrawn, or has expired. Ask for a new one."
)
OTHER_ADDRESS = (
    "This invitation was sent to another email address: sign in with that address to accept it."
)
LAST_OWNER = (
    "This is the account's last owner: make another member an owner first "
    "(an account always keeps one)."
)
SESSION_ONLY = (
    "Accounts, members and invitations are managed with a panel session (sign in): "
    "an API key cannot do that."
)
ROLES_TEXT = ", ".join(Role)


class KeysChoice(StrEnum):
    """What happens to a removed member's keys."""

    KEEP = "keep"
    REVOKE = "revoke"


class MembershipChange(StrEnum):
    """What an account's owners are emailed about."""

    JOINED = "joined"
    LEFT = "left"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class MemberMail:
    """The member a change of membership is about, as the owners' email names them."""

    change: MembershipChange
    member_id: int
    email: str
    role: str


class MemberNotFound(NotFound):
    message = "No member with that ID in this account."


class InvitationNotFound(NotFound):
    message = "No invitation with that ID in this account."


class NotAMember(NotFound):
    message = "You are not a member of that account."


class AlreadyMember(Conflict):
    message = "This person is already a member of this account."


class AlreadyInvited(Conflict):
    message = "This address has a pending invitation already. Withdraw it first to send a new one."


@dataclass(frozen=True, slots=True)
class MemberAccount:
    """An account as one of its members sees it in their list."""

    id: int
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    email: str
    role: Role
    joined_at: datetime
    # Whether the person has a second factor on (TOTP or a passkey).
    two_factor: bool = False


@dataclass(frozen=True, slots=True)
class Invitation:
    id: int
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    invited_by: str | None


def parse_role(raw: str, field: str = "role") -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise ValidationFailed(
            {field: [f"Use one of: {ROLES_TEXT}."]}, f"Unknown role. Use one of: {ROLES_TEXT}."
        ) from None


def parse_keys_choice(raw: str) -> KeysChoice:
    try:
        return KeysChoice(raw)
    except ValueError:
        raise ValidationFailed(
            {"keys": ['Use "keep" or "revoke".']},
            'Say what happens to the member\'s keys: "keep" or "revoke".',
        ) from None


def _session_only(principal: Principal) -> int:
    """The person behind a session; a key is refused (403)."""
    if principal.kind is not CredentialKind.SESSION or principal.person_id is None:
        raise Forbidden(SESSION_ONLY)
    return principal.person_id


def _member(row: Any) -> Member:
    return Member(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        joined_at=row.created_at,
        two_factor=bool(getattr(row, "two_factor", False)),
    )


def _invitation(row: Any) -> Invitation:
    return Invitation(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        created_at=row.created_at,
        expires_at=row.expires_at,
        invited_by=row.invited_by_email,
    )


_MEMBER_COLUMNS = (
    memberships.c.id,
    persons.c.email,
    memberships.c.role,
    memberships.c.created_at,
    memberships.c.person_id,
)


# Whether the member's person has a second factor on.
_TWO_FACTOR = or_(
    exists().where(
        totp_factors.c.person_id == persons.c.id, totp_factors.c.confirmed_at.is_not(None)
    ),
    exists().where(passkeys.c.person_id == persons.c.id),
).label("two_factor")


def _pending(now: datetime) -> Any:
    return (
        invitations.c.accepted_at.is_(None),
        invitations.c.withdrawn_at.is_(None),
        invitations.c.expires_at > now,
    )


class MemberService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        tokens: TokenCodec,
        limiter: RateLimiter,
        accounts: AccountService,
        on_notify: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._tokens = tokens
        self._limiter = limiter
        self._accounts = accounts
        self._on_notify = on_notify

    # -- the person's accounts -----------------------------------------------------------

    async def accounts_of(self, principal: Principal) -> list[MemberAccount]:
        """The accounts the signed-in person belongs to, in the order they joined."""
        person_id = _session_only(principal)
        rows = await self._db.read(
            lambda conn: conn.execute(
                select(accounts.c.id, accounts.c.name, memberships.c.role)
                .join(memberships, memberships.c.account_id == accounts.c.id)
                .where(memberships.c.person_id == person_id)
                .order_by(memberships.c.id)
            ).all()
        )
        return [MemberAccount(id=row.id, name=row.name, role=Role(row.role)) for row in rows]

    async def switch(self, *, principal: Principal, account_id: int, client: ClientInfo) -> Session:
        """A new session of the same person for another account they belong to."""
        person_id = _session_only(principal)

        def work(conn: Connection) -> Session:
            member = conn.execute(
                select(memberships.c.id).where(
                    memberships.c.account_id == account_id, memberships.c.person_id == person_id
                )
            ).first()
            if member is None:
                raise NotAMember
            # The proof of identity carries over: switching does not refresh step-up.
            return self._accounts.issue_session(
                conn,
                person_id=person_id,
                account_id=account_id,
                client=client,
                auth_time_epoch=principal.auth_time_epoch,
            )

        return await self._db.write(work)

    # -- members ----------------------------------------------------------------------

    async def members(self, principal: Principal) -> list[Member]:
        """The account's members, in the order they joined."""
        principal.require(Action.READ)
        rows = await self._db.read(
            lambda conn: conn.execute(
                select(*_MEMBER_COLUMNS, _TWO_FACTOR)
                .join(persons, persons.c.id == memberships.c.person_id)
                .where(memberships.c.account_id == principal.account_id)
                .order_by(memberships.c.id)
            ).all()
        )
        return [_member(row) for row in rows]

    def _hold(self, conn: Connection, principal: Principal) -> Role:
        """Hold the account and read the actor's role as committed now (401 when
        they were removed meanwhile)."""
        if not self._db.lock_account(conn, principal.account_id):
            raise NotAuthenticated
        role = current_role(conn, principal.member_id)
        if role is None:
            raise NotAuthenticated
        return role

    @staticmethod
    def _target(conn: Connection, account_id: int, member_id: int) -> Any:
        row = conn.execute(
            select(*_MEMBER_COLUMNS)
            .join(persons, persons.c.id == memberships.c.person_id)
            .where(memberships.c.id == member_id, memberships.c.account_id == account_id)
        ).first()
        if row is None:
            raise MemberNotFound
        return row

    @staticmethod
    def _owners(conn: Connection, account_id: int) -> int:
        return int(
            conn.execute(
                select(func.count())
                .select_from(memberships)
                .where(
                    memberships.c.account_id == account_id,
                    memberships.c.role == str(Role.OWNER),
                )
            ).scalar_one()
        )

    async def change_role(
        self, *, principal: Principal, member_id: int, role: str, client: ClientInfo
    ) -> Member:
        """Give a member another role; their keys the new role could not create are
        revoked. Owners change owners; the last owner stays one."""
        principal.require(Action.MANAGE_MEMBERS)
        principal.require_step_up(self._clock())
        new = parse_role(role)
        now = self._clock()

        def work(conn: Connection) -> Member:
            actor = self._hold(conn, principal)
            require(actor, Action.MANAGE_MEMBERS)
            target = self._target(conn, principal.account_id, member_id)
            old = Role(target.role)
            if Role.OWNER in (old, new):
                require(actor, Action.MANAGE_OWNERS)
            if old is new:
                return _member(target)
            if old is Role.OWNER and self._owners(conn, principal.account_id) == 1:
                raise ValidationFailed({"role": [LAST_OWNER]}, LAST_OWNER)
            conn.execute(
                update(memberships).where(memberships.c.id == target.id).values(role=str(new))
            )
            revoked = self._revoke_beyond(conn, principal, target, new, now, client)
            detail = f"{target.email}: {old} → {new}."
            if revoked:
                detail += f" Revoked their keys the new role could not create: {revoked}."
            self._member_changed(
                conn,
                audit.Event.MEMBER_ROLE_CHANGED,
                principal=principal,
                client=client,
                now=now,
                detail=detail,
            )
            return Member(id=target.id, email=target.email, role=new, joined_at=target.created_at)

        return await self._db.write(work)

    def _revoke_beyond(
        self,
        conn: Connection,
        principal: Principal,
        target: Any,
        role: Role | None,
        now: datetime,
        client: ClientInfo,
    ) -> str:
        """Revoke the active keys ``target`` vouches for that ``role`` could not
        create (``None``: every one). Returns their prefixes, for the log."""
        if may(role, Action.MANAGE_KEYS):
            return ""
        where = [api_keys.c.member_id == target.id, active(now)]
        if may(role, Action.CREATE_PURGE_KEY):
            where.append(api_keys.c.permissions != "purge")
        revoked = revoke_keys(
            conn,
            *where,
            account_id=principal.account_id,
            now=now,
            reason=RevokeReason.MEMBER,
            client=client,
            actor=principal,
            detail=f"{target.email} is no longer allowed to create it.",
            log_detail=f"Revoked with {target.email}'s change of role or removal.",
        )
        return ", ".join(key.key_prefix for key in revoked)

    async def remove(
        self, *, principal: Principal, member_id: int, keys: str, client: ClientInfo
    ) -> Member:
        """Remove a member (or leave, on one's own member id). Their keys are revoked
        or kept; kept keys are vouched for by the remover (or, when they left, the
        first owner). Their sessions of this account fail on the next request."""
        _session_only(principal)
        choice = parse_keys_choice(keys)
        now = self._clock()
        if member_id != principal.member_id:  # leaving gives up power: no step-up
            principal.require_step_up(now)

        def work(conn: Connection) -> Member:
            actor = self._hold(conn, principal)
            target = self._target(conn, principal.account_id, member_id)
            leaving = target.id == principal.member_id
            if not leaving:
                require(actor, Action.MANAGE_MEMBERS)
                if target.role == Role.OWNER:
                    require(actor, Action.MANAGE_OWNERS)
            if target.role == Role.OWNER and self._owners(conn, principal.account_id) == 1:
                raise ValidationFailed({"id": [LAST_OWNER]}, LAST_OWNER)
            if choice is KeysChoice.REVOKE:
                kept = self._revoke_beyond(conn, principal, target, None, now, client)
                what = f"Revoked their keys: {kept}." if kept else "They had no active keys."
            else:
                heir = principal.member_id if not leaving else self._first_owner(conn, target)
                kept_count = conn.execute(
                    update(api_keys)
                    .where(api_keys.c.member_id == target.id, active(now))
                    .values(member_id=heir)
                ).rowcount
                what = f"Their keys are kept ({kept_count})."
            conn.execute(delete(memberships).where(memberships.c.id == target.id))
            self._member_changed(
                conn,
                audit.Event.MEMBER_LEFT if leaving else audit.Event.MEMBER_REMOVED,
                principal=principal,
                client=client,
                now=now,
                detail=f"{target.email} ({target.role}) {'left' if leaving else 'removed'}. "
                + what,
                webhook=(
                    webhooks.Event.MEMBER_REMOVED,
                    {
                        "memberId": target.id,
                        "email": target.email,
                        "role": target.role,
                        "removedAt": now,
                        "left": leaving,
                        "keys": str(choice),
                        "actor": principal.actor_name,
                    },
                ),
                mail=MemberMail(
                    change=MembershipChange.LEFT if leaving else MembershipChange.REMOVED,
                    member_id=target.id,
                    email=target.email,
                    role=target.role,
                ),
            )
            return _member(target)

        member = await self._db.write(work)
        self._notified()
        return member

    @staticmethod
    def _first_owner(conn: Connection, leaving: Any) -> int:
        return int(
            conn.execute(
                select(memberships.c.id)
                .where(
                    memberships.c.account_id
                    == select(memberships.c.account_id)
                    .where(memberships.c.id == leaving.id)
                    .scalar_subquery(),
                    memberships.c.role == str(Role.OWNER),
                    memberships.c.id != leaving.id,
                )
                .order_by(memberships.c.id)
                .limit(1)
            ).scalar_one()
        )

    def _member_changed(
        self,
        conn: Connection,
        event: audit.Event,
        *,
        principal: Principal,
        client: ClientInfo,
        now: datetime,
        detail: str,
        account_id: int | None = None,
        webhook: tuple[webhooks.Event, dict[str, Any]] | None = None,
        mail: MemberMail | None = None,
    ) -> None:
        """The one place a change of membership is told: the security log, the
        account's webhooks (``member.joined``, ``member.removed``) and, for a member
        who joined, left or was removed, an email to each owner of the account, in
        the same transaction. Not to the owner who did it (removed someone, or
        joined or left themselves): they know, and their mail would be noise."""
        account_id = account_id if account_id is not None else principal.account_id
        audit.record(
            conn,
            account_id=account_id,
            event=event,
            at=now,
            client=client,
            actor=principal,
            detail=detail,
        )
        if webhook is not None:
            webhooks.emit(conn, account_id=account_id, event=webhook[0], data=webhook[1], now=now)
        if mail is None:
            return
        actor = () if principal.person_id is None else (principal.person_id,)
        for owner in owners_of(conn, account_ids=(account_id,), excluding=actor):
            enqueue(
                conn,
                self._db,
                account_id=account_id,
                kind=Kind.MEMBERSHIP,
                # A membership row joins once and goes once: one mail per owner.
                dedupe_key=f"membership:{mail.change}:{mail.member_id}:{owner.person_id}",
                payload={
                    "member": mail.email,
                    "role": mail.role,
                    "account_name": owner.account_names[0],
                    "change": str(mail.change),
                    "by": principal.actor_name,
                    "at": now.isoformat(),
                },
                now=now,
                recipient=owner.email,
            )

    # -- invitations ----------------------------------------------------------------------

    async def invite(
        self, *, principal: Principal, email: str, role: str, client: ClientInfo
    ) -> Invitation:
        """Invite ``email`` as ``role`` (only owners invite owners). The answer is the
        same whether or not the address has a Paradarum sign-in."""
        principal.require(Action.MANAGE_MEMBERS)
        principal.require_step_up(self._clock())
        problems: dict[str, list[str]] = {}
        try:
            email = validation.email(email)
        except ValidationFailed as exc:
            problems.update(exc.errors)
        try:
            new = parse_role(role)
        except ValidationFailed as exc:
            problems.update(exc.errors)
        if problems:
            raise ValidationFailed(problems)
        if new is Role.OWNER:
            principal.require(Action.MANAGE_OWNERS)
        retry = await self._limiter.consume(
            Limit(f"invite:{principal.account_id}", INVITATIONS_PER_HOUR, 3600)
        )
        if retry:
            raise RateLimited(retry, "Too many invitations sent recently. Try again later.")
        now = self._clock()

        def work(conn: Connection) -> Invitation:
            actor = self._hold(conn, principal)
            require(actor, Action.MANAGE_OWNERS if new is Role.OWNER else Action.MANAGE_MEMBERS)
            # Whoever signed up first with an address they do not hold could otherwise
            # bring in an accomplice who keeps the account after the owner takes the
            # address back (docs/security.md, squatting).
            if self._accounts.verifies_email:
                require_verified(conn, principal.person_id)
            member = conn.execute(
                select(memberships.c.id)
                .join(persons, persons.c.id == memberships.c.person_id)
                .where(memberships.c.account_id == principal.account_id, persons.c.email == email)
            ).first()
            if member is not None:
                raise AlreadyMember
            pending = conn.execute(
                select(invitations.c.id).where(
                    invitations.c.account_id == principal.account_id,
                    invitations.c.email == email,
                    *_pending(now),
                )
            ).first()
            if pending is not None:
                raise AlreadyInvited
            expires_at = now + INVITATION_LIFETIME
            invitation_id = int(
                conn.execute(
                    insert(invitations)
                    .values(
                        account_id=principal.account_id,
                        email=email,
                        role=str(new),
                        invited_by_member_id=principal.member_id,
                        invited_by_email=principal.email,
                        created_at=now,
                        expires_at=expires_at,
                    )
                    .returning(invitations.c.id)
                ).scalar_one()
            )
            name = conn.execute(
                select(accounts.c.name).where(accounts.c.id == principal.account_id)
            ).scalar_one()
            enqueue(
                conn,
                self._db,
                account_id=principal.account_id,
                kind=Kind.INVITATION,
                dedupe_key=f"invitation:{invitation_id}",
                payload={
                    "invitation_id": invitation_id,
                    "account_name": name,
                    "role": str(new),
                    "invited_by": principal.email,
                    "expires_at": expires_at.isoformat(),
                },
                now=now,
                recipient=email,
            )
            self._member_changed(
                conn,
                audit.Event.MEMBER_INVITED,
                principal=principal,
                client=client,
                now=now,
                detail=f"{email} invited as {new}.",
            )
            return Invitation(
                id=invitation_id,
                email=email,
                role=new,
                created_at=now,
                expires_at=expires_at,
                invited_by=principal.email,
            )

        invitation = await self._db.write(work)
        self._notified()
        return invitation

    def _notified(self) -> None:
        """Wake the email worker: something was queued."""
        if self._on_notify is not None:
            self._on_notify()

    async def invitations(self, principal: Principal) -> list[Invitation]:
        """Pending invitations (not accepted, withdrawn or expired), newest first."""
        principal.require(Action.MANAGE_MEMBERS)
        now = self._clock()
        rows = await self._db.read(
            lambda conn: conn.execute(
                select(invitations)
                .where(invitations.c.account_id == principal.account_id, *_pending(now))
                .order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
            ).all()
        )
        return [_invitation(row) for row in rows]

    async def withdraw(
        self, *, principal: Principal, invitation_id: int, client: ClientInfo
    ) -> Invitation:
        """Withdraw a pending invitation: its link stops working."""
        principal.require(Action.MANAGE_MEMBERS)
        principal.require_step_up(self._clock())
        now = self._clock()

        def work(conn: Connection) -> Invitation:
            actor = self._hold(conn, principal)
            row = conn.execute(
                select(invitations).where(
                    invitations.c.id == invitation_id,
                    invitations.c.account_id == principal.account_id,
                )
            ).first()
            if row is None:
                raise InvitationNotFound
            require(
                actor, Action.MANAGE_OWNERS if row.role == Role.OWNER else Action.MANAGE_MEMBERS
            )
            changed = conn.execute(
                update(invitations)
                .where(invitations.c.id == row.id, *_pending(now))
                .values(withdrawn_at=now)
            ).rowcount
            if changed != 1:
                message = "This invitation was accepted, withdrawn or has expired already."
                raise ValidationFailed({"id": [message]}, message)
            self._member_changed(
                conn,
                audit.Event.INVITATION_WITHDRAWN,
                principal=principal,
                client=client,
                now=now,
                detail=f"The invitation of {row.email} as {row.role} was withdrawn.",
            )
            return _invitation(row)

        return await self._db.write(work)

    async def accept(
        self, *, principal: Principal, token: str, client: ClientInfo
    ) -> MemberAccount:
        """Join the account of the invitation, as the person it was sent to."""
        person_id = _session_only(principal)
        now = self._clock()
        try:
            claims = self._tokens.read_email_token(token, now=now, purpose=INVITATION)
        except InvalidToken:
            raise ValidationFailed({"token": [INVALID_INVITATION]}, INVALID_INVITATION) from None

        def work(conn: Connection) -> MemberAccount:
            row = conn.execute(
                select(invitations).where(invitations.c.id == claims.subject)
            ).first()
            if row is None or row.email != claims.email:
                raise ValidationFailed({"token": [INVALID_INVITATION]}, INVALID_INVITATION)
            if not self._db.lock_account(conn, row.account_id):
                raise ValidationFailed({"token": [INVALID_INVITATION]}, INVALID_INVITATION)
            person = conn.execute(select(persons.c.email).where(persons.c.id == person_id)).first()
            if person is None:
                raise NotAuthenticated
            if person.email != row.email:
                raise Forbidden(OTHER_ADDRESS)
            already = conn.execute(
                select(memberships.c.id).where(
                    memberships.c.account_id == row.account_id,
                    memberships.c.person_id == person_id,
                )
            ).first()
            if already is not None:
                raise AlreadyMember("You are already a member of this account.")
            # Single use: of simultaneous acceptances, one changes the row.
            changed = conn.execute(
                update(invitations)
                .where(invitations.c.id == row.id, *_pending(now))
                .values(accepted_at=now)
            ).rowcount
            if changed != 1:
                raise ValidationFailed({"token": [INVALID_INVITATION]}, INVALID_INVITATION)
            member_id = int(
                conn.execute(
                    insert(memberships)
                    .values(
                        account_id=row.account_id,
                        person_id=person_id,
                        role=row.role,
                        created_at=now,
                    )
                    .returning(memberships.c.id)
                ).scalar_one()
            )
            # The link proved the address is theirs.
            conn.execute(
                update(persons)
                .where(persons.c.id == person_id, persons.c.email_verified_at.is_(None))
                .values(email_verified_at=now)
            )
            self._member_changed(
                conn,
                audit.Event.MEMBER_JOINED,
                principal=principal,
                client=client,
                now=now,
                detail=f"{row.email} joined as {row.role} (member {member_id}).",
                account_id=row.account_id,
                webhook=(
                    webhooks.Event.MEMBER_JOINED,
                    {"memberId": member_id, "email": row.email, "role": row.role, "joinedAt": now},
                ),
                mail=MemberMail(
                    change=MembershipChange.JOINED,
                    member_id=member_id,
                    email=row.email,
                    role=row.role,
                ),
            )
            name = conn.execute(
                select(accounts.c.name).where(accounts.c.id == row.account_id)
            ).scalar_one()
            return MemberAccount(id=row.account_id, name=name, role=Role(row.role))

        joined = await self._db.write(work)
        self._notified()
        return joined
