from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import Account, PasswordChangeIn

routes = Routes(tag="account")


@routes.get(
    "/api/account",
    permission=Permission.PURGE,
    summary="Who am I (any key, purge-only keys included)",
    with_account=True,
)
async def who_am_i(request: Request) -> Reply[Account]:
    summary = await request.runtime.accounts.summary(request.principal)
    return Reply(shapes.account(summary), "Account")


@routes.post(
    "/api/account/password",
    summary="Change the password; ends every session of the account",
)
async def change_password(request: Request, body: PasswordChangeIn) -> Reply[None]:
    await request.runtime.accounts.change_password(
        principal=request.principal,
        current=body.current_password,
        new=body.new_password,
        client=request.client,
    )
    return Reply(None, "Password changed; every session has been signed out")
