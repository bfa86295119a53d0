"""Second factors: TOTP, passkeys, recovery codes; the second step of a sign-in and
re-authentication (step-up). Rules in ``services/twofactor.py``."""

from __future__ import annotations

from paradarum.services.twofactor import Answer
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import (
    ChallengeIn,
    CodeIn,
    NewPasskey,
    Passkey,
    PasskeyIn,
    PasskeyNameIn,
    PasskeyOptions,
    ReauthenticateIn,
    RecoveryCodes,
    Session,
    TotpEnrolment,
    TwoFactorSignInIn,
    TwoFactorStatus,
)

routes = Routes(tag="two-factor")
NO_STORE = {"Cache-Control": "no-store"}
# Open to a member who must still enrol a second factor their account requires.
ENROLMENT = {"enrolment": True}


@routes.post(
    "/api/auth/login/two-factor",
    permission=None,
    errors=(401, 429),
    summary="Second step of a sign-in: the challenge and a code, a recovery code or a passkey",
    description=(
        "`challenge` is from `POST /api/auth/login` (valid 5 minutes, once). A wrong "
        "answer, or a TOTP code of a 30-second step already used, is `401`; five wrong "
        "answers end the challenge. Recovery codes work once each."
    ),
)
async def login_two_factor(request: Request, body: TwoFactorSignInIn) -> Reply[Session]:
    session = await request.runtime.two_factor.complete_sign_in(
        challenge=body.challenge,
        answer=Answer(code=body.code, recovery_code=body.recovery_code, passkey=body.passkey),
        client=request.client,
    )
    return Reply(shapes.session(session), "Signed in", headers=NO_STORE)


@routes.post(
    "/api/auth/login/two-factor/passkey-options",
    permission=None,
    errors=(401,),
    summary="WebAuthn options to answer a sign-in's challenge with a passkey",
)
async def login_passkey_options(request: Request, body: ChallengeIn) -> Reply[PasskeyOptions]:
    options = await request.runtime.two_factor.sign_in_passkey_options(challenge=body.challenge)
    return Reply(PasskeyOptions(challenge=body.challenge, public_key=options), "Passkey options")


@routes.post(
    "/api/auth/reauthenticate",
    errors=(429,),
    summary="Confirm it is you (password, and a second factor where one is on): a fresh session",
    description=(
        "Actions that mint power (keys, members and invitations, the password, second "
        "factors, trust policies) need a sign-in at most 10 minutes old; older sessions "
        'get `403` with `data: {"stepUpRequired": true}`. This answers a new session, '
        "shaped as sign-in's. A wrong password or code is a `400` on that field."
    ),
    **ENROLMENT,
)
async def reauthenticate(request: Request, body: ReauthenticateIn) -> Reply[Session]:
    session = await request.runtime.two_factor.reauthenticate(
        principal=request.principal,
        password=body.password,
        answer=Answer(code=body.code, recovery_code=body.recovery_code, passkey=body.passkey),
        challenge=body.challenge,
        client=request.client,
    )
    return Reply(shapes.session(session), "Identity confirmed", headers=NO_STORE)


@routes.post(
    "/api/auth/reauthenticate/passkey-options",
    summary="WebAuthn options to re-authenticate with a passkey",
    **ENROLMENT,
)
async def reauthenticate_passkey_options(request: Request) -> Reply[PasskeyOptions]:
    options = await request.runtime.two_factor.reauthentication_passkey_options(
        principal=request.principal
    )
    return Reply(shapes.passkey_options(options), "Passkey options")


@routes.get(
    "/api/account/two-factor",
    summary="Your second factors (session only)",
    **ENROLMENT,
)
async def status(request: Request) -> Reply[TwoFactorStatus]:
    runtime = request.runtime
    found = await runtime.two_factor.status(request.principal)
    required = await runtime.two_factor.required(request.principal.account_id)
    return Reply(shapes.two_factor_status(found, required=required), "Two-factor sign-in")


@routes.post(
    "/api/account/two-factor/totp",
    status=201,
    summary="Set up an authenticator app: a new secret, on once confirmed with a first code",
    **ENROLMENT,
)
async def start_totp(request: Request) -> Reply[TotpEnrolment]:
    enrolment = await request.runtime.two_factor.start_totp(
        principal=request.principal, client=request.client
    )
    return Reply(shapes.totp_enrolment(enrolment), "Authenticator app secret", headers=NO_STORE)


@routes.post(
    "/api/account/two-factor/totp/confirm",
    errors=(429,),
    summary="Turn the authenticator app on with its first code; the recovery codes, once",
    **ENROLMENT,
)
async def confirm_totp(request: Request, body: CodeIn) -> Reply[RecoveryCodes]:
    codes = await request.runtime.two_factor.confirm_totp(
        principal=request.principal, code=body.code, client=request.client
    )
    return Reply(
        RecoveryCodes(recovery_codes=codes),
        "Two-factor sign-in is on. Keep the recovery codes somewhere safe: they are shown once.",
        headers=NO_STORE,
    )


@routes.delete(
    "/api/account/two-factor/totp",
    errors=(429,),
    summary="Turn the authenticator app off (needs a current code)",
    **ENROLMENT,
)
async def disable_totp(request: Request, body: CodeIn) -> Reply[None]:
    await request.runtime.two_factor.disable_totp(
        principal=request.principal, code=body.code, client=request.client
    )
    return Reply(None, "The authenticator app is off.")


@routes.post(
    "/api/account/two-factor/recovery-codes",
    status=201,
    summary="New recovery codes (the old ones stop working), shown once",
    **ENROLMENT,
)
async def renew_recovery_codes(request: Request) -> Reply[RecoveryCodes]:
    codes = await request.runtime.two_factor.renew_recovery_codes(
        principal=request.principal, client=request.client
    )
    return Reply(RecoveryCodes(recovery_codes=codes), "New recovery codes", headers=NO_STORE)


@routes.post(
    "/api/account/two-factor/passkeys/options",
    summary="WebAuthn options to register a passkey",
    **ENROLMENT,
)
async def passkey_options(request: Request) -> Reply[PasskeyOptions]:
    options = await request.runtime.two_factor.passkey_registration_options(
        principal=request.principal
    )
    return Reply(shapes.passkey_options(options), "Passkey options")


@routes.post(
    "/api/account/two-factor/passkeys",
    status=201,
    summary="Register a passkey (the answer of navigator.credentials.create)",
    **ENROLMENT,
)
async def add_passkey(request: Request, body: PasskeyIn) -> Reply[NewPasskey]:
    added = await request.runtime.two_factor.register_passkey(
        principal=request.principal,
        challenge=body.challenge,
        name=body.name,
        credential=body.credential,
        client=request.client,
    )
    return Reply(shapes.new_passkey(added), "Passkey added", headers=NO_STORE)


@routes.patch(
    "/api/account/two-factor/passkeys/{id}",
    errors=(404,),
    summary="Rename a passkey",
    **ENROLMENT,
)
async def rename_passkey(request: Request, id: int, body: PasskeyNameIn) -> Reply[Passkey]:
    info = await request.runtime.two_factor.rename_passkey(
        principal=request.principal, passkey_id=id, name=body.name
    )
    return Reply(shapes.passkey(info), "Passkey renamed")


@routes.delete(
    "/api/account/two-factor/passkeys/{id}",
    errors=(404,),
    summary="Remove a passkey",
    **ENROLMENT,
)
async def remove_passkey(request: Request, id: int) -> Reply[Passkey]:
    info = await request.runtime.two_factor.remove_passkey(
        principal=request.principal, passkey_id=id, client=request.client
    )
    return Reply(shapes.passkey(info), "Passkey removed")
