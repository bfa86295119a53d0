from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.services.twofactor import SignInChallenge as TwoFactorChallenge
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import (
    CredentialsIn,
    EmailIn,
    EmailTokenIn,
    NewAccount,
    PasswordResetIn,
    Session,
    SignInChallenge,
    SignupIn,
)

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
            "Until you follow it you can sign in, but not create keys or zones or invite anyone.",
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
    description=(
        "Where the person has a second factor on, the answer has no token: "
        '`data: {"twoFactorRequired": true, "challenge", "methods", "expiresAt"}`, '
        "answered at `POST /api/auth/login/two-factor`."
    ),
)
async def login(request: Request, body: CredentialsIn) -> Reply[Session | SignInChallenge]:
    signed_in = await request.runtime.accounts.login(
        email=body.email, password=body.password, client=request.client
    )
    return Reply(shapes.sign_in(signed_in), _said(signed_in), headers=NO_STORE)


def _said(signed_in: object) -> str:
    if isinstance(signed_in, TwoFactorChallenge):
        return "Password accepted: now the second factor (POST /api/auth/login/two-factor)"
    return "Signed in"


@routes.post(
    "/api/auth/login/link",
    permission=None,
    summary="Finish a sign-in with the one-time link emailed while the account is under attack",
    description=(
        "When an email sees many failed sign-ins, a sign-in from an address that never "
        "signed in to the account answers `429` whatever the password; the right "
        "password mails the person a link to `/confirm-sign-in#token=...` (15 minutes, "
        "once). Its token here gives the session, and the address counts as known."
    ),
)
async def login_with_link(request: Request, body: EmailTokenIn) -> Reply[Session | SignInChallenge]:
    signed_in = await request.runtime.accounts.login_with_link(
        token=body.token, client=request.client
    )
    return Reply(shapes.sign_in(signed_in), _said(signed_in), headers=NO_STORE)


@routes.post(
    "/api/auth/password/forgot",
    permission=None,
    status=202,
    errors=(429,),
    summary="Ask for a password reset link by email",
    description=(
        "Always the same `202`, whether or not the email is registered; where it is, "
        "the address gets a link to `/reset-password#token=...`, valid for 1 hour, "
        "once. Limited per client address and per email."
    ),
)
async def forgot_password(request: Request, body: EmailIn) -> Reply[None]:
    await request.runtime.accounts.forgot_password(email=body.email, client=request.client)
    return Reply(
        None,
        "If an account uses this email address, a link to reset its password is on "
        "its way there. It works once, for 1 hour.",
    )


@routes.post(
    "/api/auth/password/reset",
    permission=None,
    summary="Choose a new password with the token from the emailed link",
    description=(
        "Sets the password, ends every session of the person and counts the email "
        "address as verified. A used, replaced or expired token is a `400`."
    ),
)
async def reset_password(request: Request, body: PasswordResetIn) -> Reply[None]:
    await request.runtime.accounts.reset_password(
        token=body.token, password=body.password, client=request.client
    )
    return Reply(None, "Your password has been changed and every session has been signed out.")


@routes.post(
    "/api/auth/logout",
    permission=Permission.PURGE,
    summary="Sign out: end this session token (an API key gets 400: revoke it instead)",
    enrolment=True,
)
async def logout(request: Request) -> Reply[None]:
    await request.runtime.accounts.logout(principal=request.principal, client=request.client)
    return Reply(None, "Signed out")
