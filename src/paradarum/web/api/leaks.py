"""Leaked keys: GitHub's secret scanning partner endpoint and public revocation."""

from __future__ import annotations

from typing import Any

from paradarum import secret_scanning
from paradarum.errors import NotAuthenticated
from paradarum.services.leaks import Leak
from paradarum.web.request import Request
from paradarum.web.responses import Reply, Response, raw_json
from paradarum.web.routing import Routes
from paradarum_client.models import CredentialsRevokeIn

routes = Routes(tag="leaked keys")
GITHUB = "/api/secret-scanning/github"
THANKS = "Thank you. Every Paradarum API key among these has been revoked, and its owner told."
ALERTS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": secret_scanning.MAX_ALERTS,
    "items": {
        "type": "object",
        "required": ["token", "type"],
        "properties": {
            "token": {"type": "string", "minLength": 1},
            "type": {"type": "string", "minLength": 1},
            "url": {"type": "string"},
            "source": {"type": "string"},
        },
    },
}
FEEDBACK_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["token_hash", "token_type", "label"],
        "properties": {
            "token_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "token_type": {"type": "string"},
            "label": {"enum": ["true_positive", "false_positive"]},
        },
    },
}


@routes.post(
    GITHUB,
    permission=None,
    raw_body=ALERTS_SCHEMA,
    answer=FEEDBACK_SCHEMA,
    errors=(401,),
    summary="GitHub secret scanning: revoke the reported keys, answer with feedback",
    description=(
        "GitHub's secret scanning partner protocol. The body is signed (ECDSA P-256, "
        "SHA-256) with the key named by `Github-Public-Key-Identifier`; the signature "
        "is in `Github-Public-Key-Signature`. A missing or bad signature is a 401 and "
        "nothing is revoked. Every reported string that is an active Paradarum key is "
        "revoked at once as leaked; the answer labels each token true_positive when it "
        "is or was a Paradarum key."
    ),
)
async def github(request: Request, body: bytes) -> Response:
    runtime = request.runtime
    verified = await runtime.signing_keys.verify(
        body=body,
        identifier=request.header(b"github-public-key-identifier"),
        signature=request.header(b"github-public-key-signature"),
    )
    if not verified:
        raise NotAuthenticated("The report's signature could not be verified.")
    alerts = secret_scanning.parse_alerts(body)
    report = await runtime.leaks.report(
        [
            Leak(alert.token, alert.url or f"a {alert.source or 'public'} source")
            for alert in alerts
        ],
        client=request.client,
        reporter="github",
    )
    return raw_json(secret_scanning.feedback(alerts, known_hashes=report.known_hashes))


@routes.post(
    "/api/credentials/revoke",
    permission=None,
    status=202,
    errors=(429,),
    summary="Revoke keys found in public, whoever found them (no credential needed)",
    description=(
        "Anyone who finds a Paradarum API key can kill it here. The answer is the same "
        "whether or not anything matched; matches are revoked as leaked and their owners "
        "told. Rate limited per client address."
    ),
)
async def revoke_found(request: Request, body: CredentialsRevokeIn) -> Reply[None]:
    await request.runtime.leaks.report_found(body.credentials, client=request.client)
    return Reply(None, THANKS)
