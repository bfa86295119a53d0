from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import OidcKey, OidcTokenIn, TrustPolicy, TrustPolicyIn

routes = Routes(tag="ci access")
NO_STORE = {"Cache-Control": "no-store"}


@routes.get(
    "/api/account/trust-policies",
    summary="List trust policies, newest first (panel session only)",
)
async def list_policies(request: Request) -> Reply[list[TrustPolicy]]:
    policies = await request.runtime.trust.list(principal=request.principal)
    return Reply([shapes.trust_policy(policy) for policy in policies], "Trust policies")


@routes.post(
    "/api/account/trust-policies",
    status=201,
    summary="Trust a CI job's OpenID Connect tokens (panel session only)",
)
async def create_policy(request: Request, body: TrustPolicyIn) -> Reply[TrustPolicy]:
    policy = await request.runtime.trust.create(
        principal=request.principal,
        client=request.client,
        name=body.name,
        issuer=body.issuer,
        audience=body.audience,
        conditions=body.conditions,
        permission=Permission(body.permissions),
        zone_ids=body.zone_ids,
        ttl_seconds=body.ttl_seconds,
    )
    return Reply(shapes.trust_policy(policy), "Trust policy created")


@routes.delete(
    "/api/account/trust-policies/{id}",
    errors=(404,),
    summary="Delete a trust policy and revoke every key it minted (panel session only)",
)
async def delete_policy(request: Request, id: int) -> Reply[TrustPolicy]:
    policy = await request.runtime.trust.delete(
        principal=request.principal, policy_id=id, client=request.client
    )
    return Reply(
        shapes.trust_policy(policy), "Trust policy deleted; the keys it minted are revoked"
    )


@routes.post(
    "/api/oidc/token",
    permission=None,
    status=201,
    errors=(401, 429),
    summary="Trade a CI job's OpenID Connect ID token for a short-lived key",
    description=(
        "No other credential. The token must verify against its issuer's published keys "
        "and meet a trust policy; any failure is the same 401."
    ),
)
async def exchange_token(request: Request, body: OidcTokenIn) -> Reply[OidcKey]:
    minted = await request.runtime.trust.exchange(
        token=body.token, client=request.client, policy_id=body.policy_id
    )
    return Reply(shapes.oidc_key(minted), "Key issued", headers=NO_STORE)
