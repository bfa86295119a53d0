from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum.web.schemas import PasswordChangeIn
from paradarum_client.models import Account

routes = Routes(tag="account")


@routes.get(
    "/api/account",
    permission=Permission.PURGE,
    response=Account,
    summary="Who am I (any key, purge-only keys included)",
)
async def who_am_i(request: Request) -> Reply:
    summary = await request.runtime.accounts.summary(request.principal)
    return Reply(shapes.account(summary), "Account")


@routes.post(
    "/api/account/password",
    body=PasswordChangeIn,
    summary="Change the password; ends every session of the account",
)
async def change_password(request: Request) -> Reply:
    body: PasswordChangeIn = request.body
    await request.runtime.accounts.change_password(
        principal=request.principal,
        current=body.currentPassword,
        new=body.newPassword,
        client=request.client,
    )
    return Reply(None, "Password changed; every session has been signed out")
