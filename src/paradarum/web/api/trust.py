from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum.web.schemas import OidcTokenIn, TrustPolicyIn
from paradarum_client.models import OidcKey, TrustPolicy

routes = Routes(tag="ci access")
NO_STORE = {"Cache-Control": "no-store"}


@routes.get(
    "/api/account/trust-policies",
    response=list[TrustPolicy],
    summary="List trust policies, newest first (panel session only)",
)
async def list_policies(request: Request) -> Reply:
    policies = await request.runtime.trust.list(principal=request.principal)
    return Reply([shapes.trust_policy(policy) for policy in policies], "Trust policies")


@routes.post(
    "/api/account/trust-policies",
    body=TrustPolicyIn,
    response=TrustPolicy,
    status=201,
    summary="Trust a CI job's OpenID Connect tokens (panel session only)",
)
async def create_policy(request: Request) -> Reply:
    body: TrustPolicyIn = request.body
    policy = await request.runtime.trust.create(
        principal=request.principal,
        client=request.client,
        name=body.name,
        issuer=body.issuer,
        audience=body.audience,
        conditions=body.conditions,
        permission=Permission(body.permissions),
        zone_ids=body.zoneIds,
        ttl_seconds=body.ttlSeconds,
    )
    return Reply(shapes.trust_policy(policy), "Trust policy created")


@routes.delete(
    "/api/account/trust-policies/{id}",
    response=TrustPolicy,
    errors=(404,),
    summary="Delete a trust policy and revoke every key it minted (panel session only)",
)
async def delete_policy(request: Request) -> Reply:
    policy = await request.runtime.trust.delete(
        principal=request.principal, policy_id=request.params["id"], client=request.client
    )
    return Reply(
        shapes.trust_policy(policy), "Trust policy deleted; the keys it minted are revoked"
    )


@routes.post(
    "/api/oidc/token",
    permission=None,
    body=OidcTokenIn,
    response=OidcKey,
    status=201,
    errors=(401, 429),
    summary="Trade a CI job's OpenID Connect ID token for a short-lived key",
    description=(
        "No other credential. The token must verify against its issuer's published keys "
        "and meet a trust policy; any failure is the same 401."
    ),
)
async def exchange_token(request: Request) -> Reply:
    body: OidcTokenIn = request.body
    minted = await request.runtime.trust.exchange(
        token=body.token, client=request.client, policy_id=body.policyId
    )
    return Reply(shapes.oidc_key(minted), "Key issued", headers=NO_STORE)
