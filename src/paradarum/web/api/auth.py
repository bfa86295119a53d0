from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum.web.schemas import CredentialsIn, SignupIn
from paradarum_client.models import NewAccount, Session

routes = Routes(tag="auth")
NO_STORE = {"Cache-Control": "no-store"}


@routes.post(
    "/api/auth/signup",
    permission=None,
    body=SignupIn,
    response=NewAccount,
    status=201,
    errors=(403, 409, 429),
    summary="Create an account",
)
async def signup(request: Request) -> Reply:
    body: SignupIn = request.body
    account = await request.runtime.accounts.signup(
        email=body.email, password=body.password, client=request.client
    )
    return Reply(shapes.new_account(account), "Account created")


@routes.post(
    "/api/auth/login",
    permission=None,
    body=CredentialsIn,
    response=Session,
    errors=(401, 429),
    summary="Sign in: get a panel session token (JWT)",
)
async def login(request: Request) -> Reply:
    body: CredentialsIn = request.body
    session = await request.runtime.accounts.login(
        email=body.email, password=body.password, client=request.client
    )
    return Reply(shapes.session(session), "Signed in", headers=NO_STORE)


@routes.post(
    "/api/auth/logout",
    permission=Permission.PURGE,
    summary="Sign out: end this session token (an API key gets 400: revoke it instead)",
)
async def logout(request: Request) -> Reply:
    await request.runtime.accounts.logout(principal=request.principal, client=request.client)
    return Reply(None, "Signed out")
