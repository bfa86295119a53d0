from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import Account, AccountSettingsIn, PasswordChangeIn

routes = Routes(tag="account")


@routes.get(
    "/api/account",
    permission=Permission.PURGE,
    summary="Who am I (any key, purge-only keys included)",
    enrolment=True,
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


@routes.patch(
    "/api/account",
    summary="Change the account's settings: requireTwoFactor (owners, session only)",
    description=(
        "`requireTwoFactor: true` requires a second factor of every member: a member "
        'without one then gets `403` (`data: {"twoFactorEnrolmentRequired": true}`) on '
        "everything but enrolling. The owner must have a second factor on first."
    ),
)
async def change_settings(request: Request, body: AccountSettingsIn) -> Reply[Account]:
    runtime = request.runtime
    if body.require_two_factor is not None:
        await runtime.two_factor.set_required(
            principal=request.principal, required=body.require_two_factor, client=request.client
        )
    summary = await runtime.accounts.summary(request.principal)
    return Reply(shapes.account(summary), "Account settings saved")
