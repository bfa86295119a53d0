from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import CredentialsIn, EmailTokenIn, NewAccount, Session, SignupIn

routes = Routes(tag="auth")
NO_STORE = {"Cache-Control": "no-store"}


@routes.post(
    "/api/auth/signup",
    permission=None,
    status=201,
    errors=(403, 409, 429),
    summary="Create an account",
    description=(
        "Where the server verifies email addresses, the answer is the same whether or "
        "not the email is registered already (`data` is null): the link goes by email. "
        "Elsewhere `data` is the new account, and a registered email is a 409."
    ),
)
async def signup(request: Request, body: SignupIn) -> Reply[NewAccount | None]:
    account = await request.runtime.accounts.signup(
        email=body.email, password=body.password, client=request.client
    )
    if account is None:
        return Reply(
            None,
            "Check your inbox: a link to verify your email address is on its way. "
            "Until you follow it you can sign in, but not create keys or zones.",
        )
    return Reply(shapes.new_account(account), "Account created")


@routes.post(
    "/api/auth/email/verify",
    permission=None,
    summary="Verify an email address with the token from the emailed link",
)
async def verify_email(request: Request, body: EmailTokenIn) -> Reply[None]:
    await request.runtime.accounts.verify_email(token=body.token, client=request.client)
    return Reply(None, "Your email address is verified.")


@routes.post(
    "/api/account/email/verification",
    errors=(429,),
    summary="Send a new email verification link",
)
async def resend_verification(request: Request) -> Reply[None]:
    await request.runtime.accounts.resend_verification(principal=request.principal)
    return Reply(None, "A new verification link is on its way to your inbox.")


@routes.post(
    "/api/auth/login",
    permission=None,
    errors=(401, 429),
    summary="Sign in: get a panel session token (JWT)",
)
async def login(request: Request, body: CredentialsIn) -> Reply[Session]:
    session = await request.runtime.accounts.login(
        email=body.email, password=body.password, client=request.client
    )
    return Reply(shapes.session(session), "Signed in", headers=NO_STORE)


@routes.post(
    "/api/auth/logout",
    permission=Permission.PURGE,
    summary="Sign out: end this session token (an API key gets 400: revoke it instead)",
)
async def logout(request: Request) -> Reply[None]:
    await request.runtime.accounts.logout(principal=request.principal, client=request.client)
    return Reply(None, "Signed out")
