from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from paradarum.clock import rfc3339
from paradarum.web.deps import ClientDep, PrincipalDep, RuntimeDep
from paradarum.web.responses import ok
from paradarum.web.schemas import AccountSummaryOut, Envelope, PasswordChangeIn, error_responses

router = APIRouter(prefix="/account", tags=["account"])


@router.get(
    "",
    response_model=Envelope[AccountSummaryOut],
    responses=error_responses(401, 429),
    summary="Who am I",
)
async def who_am_i(principal: PrincipalDep, runtime: RuntimeDep) -> JSONResponse:
    summary = await runtime.accounts.summary(principal.account_id)
    account = summary.account
    return ok(
        {
            "id": account.id,
            "email": account.email,
            "createdAt": rfc3339(account.created_at),
            "activeKeys": summary.active_keys,
            "keyLimit": summary.key_limit,
        },
        "Account",
    )


@router.post(
    "/password",
    response_model=Envelope[None],
    responses=error_responses(400, 401, 413, 415, 429),
    summary="Change the password; ends every session of the account",
)
async def change_password(
    body: PasswordChangeIn, principal: PrincipalDep, runtime: RuntimeDep, client: ClientDep
) -> JSONResponse:
    await run_in_threadpool(
        lambda: runtime.accounts.change_password(
            principal=principal, current=body.currentPassword, new=body.newPassword, client=client
        )
    )
    return ok(None, "Password changed; every session has been signed out")
