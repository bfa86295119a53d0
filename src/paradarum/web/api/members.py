"""Teams: the person's accounts, switching, members, roles and invitations."""

from __future__ import annotations

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import (
    AccountMembership,
    Invitation,
    InvitationIn,
    InvitationTokenIn,
    Member,
    RemoveMemberIn,
    RoleIn,
    Session,
    SwitchIn,
)

routes = Routes(tag="members")
NO_STORE = {"Cache-Control": "no-store"}


@routes.get(
    "/api/accounts",
    summary="The accounts the signed-in person belongs to, with their role (session only)",
    enrolment=True,
)
async def list_accounts(request: Request) -> Reply[list[AccountMembership]]:
    found = await request.runtime.members.accounts_of(request.principal)
    return Reply([shapes.membership(account) for account in found], "Your accounts")


@routes.post(
    "/api/auth/switch",
    errors=(404,),
    summary="A new session for another account the person belongs to (session only)",
    enrolment=True,
)
async def switch(request: Request, body: SwitchIn) -> Reply[Session]:
    session = await request.runtime.members.switch(
        principal=request.principal, account_id=body.account_id, client=request.client
    )
    return Reply(shapes.session(session), "Switched account", headers=NO_STORE)


@routes.get(
    "/api/account/members",
    summary="The account's members, in the order they joined",
)
async def list_members(request: Request) -> Reply[list[Member]]:
    found = await request.runtime.members.members(request.principal)
    return Reply([shapes.member(member) for member in found], "Members")


@routes.patch(
    "/api/account/members/{id}",
    errors=(404,),
    summary="Change a member's role (owner, admin); keys the new role could not create are revoked",
)
async def change_role(request: Request, id: int, body: RoleIn) -> Reply[Member]:
    member = await request.runtime.members.change_role(
        principal=request.principal,
        member_id=id,
        role=body.role,
        client=request.client,
    )
    return Reply(shapes.member(member), "Role changed")


@routes.delete(
    "/api/account/members/{id}",
    errors=(404,),
    summary="Remove a member (owner, admin), or leave (your own member id)",
)
async def remove_member(request: Request, id: int, body: RemoveMemberIn) -> Reply[Member]:
    runtime = request.runtime
    member = await runtime.members.remove(
        principal=request.principal,
        member_id=id,
        keys=body.keys,
        client=request.client,
    )
    left = member.id == request.principal.member_id
    return Reply(shapes.member(member), "You left the account" if left else "Member removed")


@routes.post(
    "/api/account/invitations",
    status=201,
    errors=(409,),
    summary="Invite someone by email (owner, admin; only owners invite owners)",
)
async def invite(request: Request, body: InvitationIn) -> Reply[Invitation]:
    invitation = await request.runtime.members.invite(
        principal=request.principal, email=body.email, role=body.role, client=request.client
    )
    return Reply(shapes.invitation(invitation), "Invitation sent")


@routes.get(
    "/api/account/invitations",
    summary="Pending invitations, newest first (owner, admin)",
)
async def list_invitations(request: Request) -> Reply[list[Invitation]]:
    found = await request.runtime.members.invitations(request.principal)
    return Reply([shapes.invitation(invitation) for invitation in found], "Pending invitations")


@routes.delete(
    "/api/account/invitations/{id}",
    errors=(404,),
    summary="Withdraw a pending invitation: its link stops working",
)
async def withdraw(request: Request, id: int) -> Reply[Invitation]:
    invitation = await request.runtime.members.withdraw(
        principal=request.principal, invitation_id=id, client=request.client
    )
    return Reply(shapes.invitation(invitation), "Invitation withdrawn")


@routes.post(
    "/api/invitations/accept",
    summary="Accept an invitation, signed in as the person it was sent to",
)
async def accept(request: Request, body: InvitationTokenIn) -> Reply[AccountMembership]:
    joined = await request.runtime.members.accept(
        principal=request.principal, token=body.token, client=request.client
    )
    return Reply(
        shapes.membership(joined),
        f"You are now a member of {joined.name} (POST /api/auth/switch to act on it)",
    )
