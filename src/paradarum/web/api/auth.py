from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from paradarum.clock import rfc3339
from paradarum.web.deps import ClientDep, PrincipalDep, RuntimeDep
from paradarum.web.responses import NO_STORE, ok
from paradarum.web.schemas import (
    AccountOut,
    CredentialsIn,
    Envelope,
    SessionOut,
    SignupIn,
    error_responses,
)

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/signup",
    status_code=201,
    response_model=Envelope[AccountOut],
    responses=error_responses(400, 403, 409, 413, 415),
    summary="Create an account",
)
async def signup(body: SignupIn, runtime: RuntimeDep, client: ClientDep) -> JSONResponse:
    account = await run_in_threadpool(
        lambda: runtime.accounts.signup(email=body.email, password=body.password, client=client)
    )
    data = {"id": account.id, "email": account.email, "createdAt": rfc3339(account.created_at)}
    return ok(data, "Account created", status=201)


@router.post(
    "/login",
    response_model=Envelope[SessionOut],
    responses=error_responses(400, 401, 413, 415, 429),
    summary="Sign in: get a panel session token (JWT)",
)
async def login(body: CredentialsIn, runtime: RuntimeDep, client: ClientDep) -> JSONResponse:
    session = await run_in_threadpool(
        lambda: runtime.accounts.login(email=body.email, password=body.password, client=client)
    )
    data = {
        "token": session.token,
        "tokenType": "Bearer",
        "expiresAt": rfc3339(session.claims.expires_at),
    }
    return ok(data, "Signed in", headers=NO_STORE)


@router.post(
    "/logout",
    response_model=Envelope[None],
    responses=error_responses(400, 401, 429),
    summary="Sign out: end this session token (an API key gets 400: revoke it instead)",
)
async def logout(principal: PrincipalDep, runtime: RuntimeDep, client: ClientDep) -> JSONResponse:
    await run_in_threadpool(lambda: runtime.accounts.logout(principal=principal, client=client))
    return ok(None, "Signed out")
