"""``paradarum purge --oidc``: a CI job purges with no key stored, end to end against a
real server process, a local OIDC issuer and a stand-in for GitHub Actions' token
endpoint."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cache import recording_node
from tests.client.conftest import ApiServer, serve
from tests.client.harness import KEY, Cli, active_zone
from tests.oidc import Issuer, oidc_issuer
from tests.support import PASSWORD, bearer, free_port, login, signup, wait_until


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with oidc_issuer() as server:
        yield server


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[ApiServer]:
    port = free_port()
    with recording_node() as node:
        # The server's public URL is the audience trust policies expect by default, and
        # the one the CLI asks GitHub for by default (the server's URL).
        server = serve(
            tmp_path_factory,
            node,
            port=port,
            PARADARUM_PUBLIC_URL=f"http://127.0.0.1:{port}",
            PARADARUM_OIDC_INSECURE_ISSUERS=issuer.url,
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def ci_job(oidc_server: ApiServer, issuer: Issuer, tmp_path: Path) -> Cli:
    """The CLI as a GitHub Actions job runs it: no key, no session, the two variables."""
    cli = Cli(oidc_server.url, tmp_path / "config")
    cli.env.update(
        {
            "ACTIONS_ID_TOKEN_REQUEST_URL": issuer.actions_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": issuer.request_token,
        }
    )
    issuer.actions_claims = {}
    return cli


def account_with_policy(
    server: ApiServer, issuer: Issuer, email: str, repository_id: str
) -> tuple[str, str, int]:
    """An account with an active zone and a trust policy for the main branch of the
    repository ``repository_id`` (the one the Actions stand-in's tokens name from now
    on); returns (session, hostname, policy id)."""
    issuer.actions_claims = {"repository_id": repository_id}
    with httpx.Client(base_url=server.url) as http:
        signup(http, email)
        session = login(http, email, PASSWORD)
        hostname = active_zone(server, email)
        response = http.post(
            "/api/account/trust-policies",
            json={
                "name": "acme/site deploy",
                "issuer": issuer.url,
                "conditions": {"repository_id": repository_id, "ref": "refs/heads/main"},
            },
            headers=bearer(session),
        )
        assert response.status_code == 201, response.text
    return session, hostname, response.json()["data"]["id"]


def test_a_github_actions_job_purges_its_zone_with_no_stored_key(oidc_server, issuer, ci_job):
    session, hostname, _ = account_with_policy(oidc_server, issuer, "ci-purge@example.com", "1")
    url = f"https://{hostname}/blog/post"
    result = ci_job("purge", url, "--oidc")
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output
    assert "trust policy" in result.output
    assert KEY.search(result.output) is None  # the minted key is never printed

    def purged() -> bool:
        return any(
            request.method == "PURGE"
            and request.path == "/blog/post"
            and request.headers.get("host") == hostname
            for request in oidc_server.node.requests
        )

    wait_until(purged)
    with httpx.Client(base_url=oidc_server.url) as http:
        keys = http.get("/api/account/apikeys", headers=bearer(session)).json()["data"]
    assert [key["createdBy"]["kind"] for key in keys] == ["oidc"]
    assert keys[0]["permissions"] == "purge"


def test_another_repository_with_the_same_name_cannot_purge(oidc_server, issuer, ci_job):
    _, hostname, _ = account_with_policy(oidc_server, issuer, "ci-other@example.com", "2")
    issuer.actions_claims = {"repository_id": "999999"}  # acme/site, recreated by someone
    result = ci_job("purge", f"https://{hostname}/", "--oidc")
    assert result.exit_code == 1
    assert "Missing or invalid credentials" in result.output


def test_the_token_can_come_from_a_variable_as_in_gitlab(oidc_server, issuer, ci_job):
    _, hostname, _ = account_with_policy(oidc_server, issuer, "ci-gitlab@example.com", "3")
    token = issuer.sign(issuer.github_claims(audience=oidc_server.url, repository_id="3"))
    result = ci_job(
        "purge",
        f"https://{hostname}/",
        "--oidc-token-env",
        "PARADARUM_ID_TOKEN",
        env={"ACTIONS_ID_TOKEN_REQUEST_URL": "", "PARADARUM_ID_TOKEN": token},
    )
    assert result.exit_code == 0, result.output


def test_when_two_accounts_trust_one_repository_the_job_names_its_policy(
    oidc_server, issuer, ci_job
):
    """An account that trusted the repository first must not receive its jobs."""
    account_with_policy(oidc_server, issuer, "ci-squatter@example.com", "4")
    _, hostname, policy_id = account_with_policy(oidc_server, issuer, "ci-owner@example.com", "4")
    refused = ci_job("purge", f"https://{hostname}/", "--oidc")
    assert refused.exit_code == 1
    result = ci_job("purge", f"https://{hostname}/", "--oidc", "--oidc-policy", str(policy_id))
    assert result.exit_code == 0, result.output


def test_outside_github_actions_the_cli_says_what_is_missing(oidc_server, ci_job):
    result = ci_job(
        "purge", "https://www.example.com/", "--oidc", env={"ACTIONS_ID_TOKEN_REQUEST_URL": ""}
    )
    assert result.exit_code == 2
    assert "id-token: write" in result.output


DOCS_CI = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def test_the_github_workflow_in_docs_ci_purges_its_zone_with_no_secret(oidc_server, issuer, ci_job):
    """The workflow and the policy exactly as docs/ci.md writes them, against the
    Actions stand-in and the local issuer (the server's URL replacing the example's)."""
    text = DOCS_CI.read_text()
    section = text.split("## GitHub Actions", 1)[1].split("\n## ", 1)[0]
    workflow = re.search(r"```yaml\n(.*?)```", section, re.S)
    policy = re.search(r"-d '(\{.*?\})'", section, re.S)
    assert workflow is not None and policy is not None
    workflow_text = workflow.group(1)
    assert "id-token: write" in workflow_text
    assert "secrets." not in workflow_text and "PARADARUM_API_KEY" not in workflow_text
    [command] = re.findall(r"run: (paradarum purge .*)", workflow_text)
    body = json.loads(policy.group(1))
    body["issuer"] = issuer.url  # the local issuer stands in for GitHub's
    email = "ci-docs@example.com"
    with httpx.Client(base_url=oidc_server.url) as http:
        signup(http, email)
        session = login(http, email, PASSWORD)
        response = http.post("/api/account/trust-policies", json=body, headers=bearer(session))
        assert response.status_code == 201, response.text
    url = next(arg for arg in shlex.split(command) if arg.startswith("https://"))
    active_zone(oidc_server, email, httpx.URL(url).host)
    issuer.actions_claims = {}  # a push to main of the repository the policy names
    result = ci_job(*shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert "done" in result.output


def test_both_clients_exchange_a_token_and_purge_with_the_key(oidc_server, issuer):
    import asyncio

    from paradarum_client import AsyncClient, AuthenticationError, Client

    _, hostname, policy_id = account_with_policy(oidc_server, issuer, "ci-lib@example.com", "5")

    def token() -> str:
        return issuer.sign(issuer.github_claims(audience=oidc_server.url, repository_id="5"))

    client, minted = Client.from_oidc_token(token(), base_url=oidc_server.url)
    with client:
        assert minted.policy_id == policy_id
        assert client.purge.urls([f"https://{hostname}/"]).kind == "urls"

    async def exchange() -> str:
        async with AsyncClient(base_url=oidc_server.url, token="") as anonymous:
            return (await anonymous.exchange_oidc_token(token(), policy_id=policy_id)).key

    assert KEY.fullmatch(asyncio.run(exchange()))
    with (
        Client(base_url=oidc_server.url, token="") as anonymous,
        pytest.raises(AuthenticationError),
    ):
        anonymous.exchange_oidc_token("not a token")
