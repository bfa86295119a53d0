"""The edge, in process: HTTP details every client meets (405 with the right Allow,
HEAD, trailing slashes), credentials that are ambiguous or in the URL, and log
lines that stay one line whatever a request holds; then ``paradarum.web.edge``'s
middlewares driven directly as ASGI apps (body guard, header limit, in-flight
limit, client share, security headers, last resort, access log)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from paradarum import keys, logs
from paradarum.logs import AccessLogWriter
from paradarum.web import edge
from paradarum.web import errors as web_errors
from paradarum.web.request import BODY
from tests.support import bearer, create_key, new_account, peer, until


def test_a_method_an_endpoint_does_not_have_is_405_with_the_methods_it_has(client):
    cases = {
        ("PUT", "/api/account/apikeys"): "GET, HEAD, POST",
        ("POST", "/api/account"): "GET, HEAD, PATCH",
        ("GET", "/api/auth/login"): "POST",
        ("PATCH", "/api/account/zones/7"): "DELETE",
    }
    for (method, path), allow in cases.items():
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allow
        assert response.json()["succeeded"] is False


def test_head_answers_pages_and_reads_without_a_body(client):
    for path in ("/account", "/signin", "/api/health"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0


def test_a_trailing_slash_is_a_404_envelope_that_names_the_right_path(client):
    response = client.get("/api/account/apikeys/", follow_redirects=False)
    assert response.status_code == 404
    assert "/api/account/apikeys" in response.json()["message"]
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        # Two Authorization headers.
        [("authorization", "Bearer {key}"), ("authorization", "Bearer {other}")],
        # Authorization and X-API-Key with different values.
        [("authorization", "Bearer {key}"), ("x-api-key", "{other}")],
        # Even the same key twice: one credential per request.
        [("x-api-key", "{key}"), ("x-api-key", "{key}")],
    ],
)
def test_more_than_one_credential_is_a_400_never_the_first_one_silently(client, headers):
    token = new_account(client)
    key, other = create_key(client, token)["key"], create_key(client, token)["key"]
    raw = [(name, value.format(key=key, other=other)) for name, value in headers]
    response = client.get("/api/account", headers=raw)
    assert response.status_code == 400
    assert response.json()["message"] == "Send one credential."


def test_a_session_token_in_the_query_string_is_refused_like_a_key(client):
    token = new_account(client)
    for query in (f"token={token}", f"session={token}", f"x={token}"):
        response = client.get(f"/api/account?{query}", headers=bearer(token))
        assert response.status_code == 401, query


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved


def test_a_log_entry_stays_one_line_whatever_the_path_holds(client, log_lines):
    tricky = "/api/\u2028second-line\u0085third\u202eevil\u2066x"
    client.get(tricky)
    logging.getLogger("paradarum.test").warning("name %s", "a\u2028b\u202ec")
    text = log_lines.getvalue()
    for character in ("\u2028", "\u0085", "\u202e", "\u2066"):
        assert character not in text
    lines = text.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one whole entry
    assert any(entry.get("path", "").startswith("/api/\u2028second-line") for entry in entries)
    assert any(entry.get("message") == "name a\u2028b\u202ec" for entry in entries)


def test_a_header_line_over_16_kib_is_431(client):
    response = client.get("/api/health", headers={"X-Big": "x" * (16 * 1024 + 1)})
    assert response.status_code == 431
    assert response.json()["succeeded"] is False


class TestAccessLogBehindAProxy:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"trusted_proxies": ["10.0.0.0/8"]}

    def test_the_access_log_names_the_client_the_proxy_forwards_for(self, client, log_lines):
        client.get("/api/health", headers=peer("10.1.1.1", {"X-Forwarded-For": "203.0.113.9"}))
        # A forged header from a peer that is not a trusted proxy changes nothing.
        client.get("/api/health", headers=peer("198.51.100.7", {"X-Forwarded-For": "192.0.2.1"}))
        entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        clients = [entry["client"] for entry in entries if entry.get("path") == "/api/health"]
        assert clients == ["203.0.113.9", "198.51.100.7"]


def test_the_access_log_masks_every_kind_of_secret_a_path_can_hold(client, log_lines):
    digest = hashlib.sha256(b"a key").hexdigest()
    argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    for path in (f"/api/x/{digest}", f"/api/x/Bearer {digest[:20]}", f"/api/x/{argon}"):
        client.get(path)
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    paths = [entry["path"] for entry in entries if entry["logger"] == "paradarum.access"]
    assert paths == [
        "/api/x/[hash]",
        "/api/x/Bearer [redacted]",
        "/api/x/[password hash]",
    ]


# -- the edge's middlewares as ASGI apps, driven directly ---------------------------------
#
# Each is given a small inner app and a scope, receive and send of the test's own, so
# that what reaches the app (or does not), what is read and what is sent can be seen.

PEER = "198.51.100.7"


def http_scope(
    method: str = "GET",
    path: str = "/api/things",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
    peer: str | None = PEER,
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers or []),
        "client": (peer, 40000) if peer else None,
    }


class Body:
    """``receive`` for a body sent in ``chunks``; counts how much of it was asked for."""

    def __init__(self, *chunks: bytes, disconnect: bool = False) -> None:
        self.messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks or (b"",))
        ]
        if disconnect:
            self.messages[-1]["more_body"] = True
            self.messages.append({"type": "http.disconnect"})
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        if self.read >= len(self.messages):
            raise AssertionError("read past the end of the request")
        self.read += 1
        return self.messages[self.read - 1]


class Sent:
    """``send`` that keeps the answer."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) <= 1
        return starts[0]["status"] if starts else None

    @property
    def headers(self) -> list[tuple[str, str]]:
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return [(name.decode(), value.decode()) for name, value in start["headers"]]

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def json(self) -> dict[str, Any]:
        body = b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )
        return json.loads(body)


class Inner:
    """The app inside: records what reached it and answers 200, or waits for ``gate``
    (to hold its slot), or fails before or after it started answering."""

    def __init__(
        self,
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        fail: str = "",
    ) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.headers = headers or []
        self.fail = fail
        self.gate: asyncio.Event | None = None
        self.waiting = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if self.fail == "before":
            raise RuntimeError("inner detail that must not be shown")
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        await send({"type": "http.response.start", "status": 200, "headers": list(self.headers)})
        if self.fail == "after":
            raise RuntimeError("failed while answering")
        await send({"type": "http.response.body", "body": b'{"succeeded": true}'})


def drive(app: Any, scope: dict[str, Any], body: Body | None = None) -> Sent:
    sent = Sent()
    asyncio.run(app(scope, body or Body(), sent))
    return sent


def refused_with(sent: Sent, status: int, message: str) -> None:
    assert sent.status == status
    assert sent.json() == {"succeeded": False, "message": message, "data": None}


JSON_TYPE = (b"content-type", b"application/json")


class TestBodyGuard:
    def test_a_json_body_sent_in_pieces_is_read_once_and_handed_on_in_the_scope(self):
        inner = Inner()
        body = Body(b'{"na', b'me": ', b'"k"}')
        sent = drive(edge.BodyGuard(inner), http_scope("POST", headers=[JSON_TYPE]), body)
        assert sent.status == 200
        assert inner.scopes[0][BODY] == b'{"name": "k"}'
        assert body.read == 3

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/api/things"), ("HEAD", "/api/things"), ("POST", "/signin")],
    )
    def test_requests_without_an_api_body_pass_unread(self, method, path):
        inner = Inner()
        body = Body(b"x" * (edge.MAX_BODY + 1))
        drive(edge.BodyGuard(inner), http_scope(method, path), body)
        assert len(inner.scopes) == 1 and BODY not in inner.scopes[0]
        assert body.read == 0  # the app reads it, if it wants it

    def test_delete_bodies_are_guarded_too(self):
        inner = Inner()
        sent = drive(
            edge.BodyGuard(inner),
            http_scope("DELETE", headers=[(b"content-type", b"text/plain")]),
            Body(b"keys=keep"),
        )
        refused_with(sent, 415, web_errors.NOT_JSON)
        assert inner.scopes == []

    def test_a_body_of_exactly_the_limit_passes_one_byte_more_is_413_as_it_streams(self):
        limit = 1024
        inner = Inner()
        exact = Body(b"[" + b" " * (limit - 2), b"]")
        assert (
            drive(
                edge.BodyGuard(inner, limit=limit), http_scope("PUT", headers=[JSON_TYPE]), exact
            ).status
            == 200
        )
        assert len(inner.scopes[0][BODY]) == limit
        over = Body(b" " * 600, b" " * 600, b" " * 600)  # no Content-Length: counted as it comes
        sent = drive(
            edge.BodyGuard(inner, limit=limit), http_scope("PUT", headers=[JSON_TYPE]), over
        )
        refused_with(sent, 413, "The request body is larger than 1 KiB.")
        assert over.read == 2  # stopped reading where the limit was passed
        assert len(inner.scopes) == 1

    def test_a_declared_length_over_the_limit_is_413_before_anything_is_read(self):
        inner = Inner()
        body = Body(b"{}")
        headers = [(b"content-length", str(edge.MAX_BODY + 1).encode()), JSON_TYPE]
        sent = drive(edge.BodyGuard(inner), http_scope("POST", headers=headers), body)
        refused_with(sent, 413, "The request body is larger than 64 KiB.")
        assert body.read == 0 and inner.scopes == []

    @pytest.mark.parametrize("length", [b"-1", b"1e3", b"12 ", b"", b"0x10"])
    def test_a_content_length_that_is_not_a_number_is_400(self, length):
        inner = Inner()
        body = Body(b"{}")
        sent = drive(
            edge.BodyGuard(inner),
            http_scope("POST", headers=[(b"content-length", length), JSON_TYPE]),
            body,
        )
        refused_with(sent, 400, web_errors.BAD_LENGTH)
        assert body.read == 0 and inner.scopes == []

    def test_a_path_allowed_a_larger_body_gets_its_own_limit_and_says_it(self):
        guard = edge.BodyGuard(Inner(), larger={"/api/imports": 2 * 1024 * 1024})
        big = b"[" + b" " * (edge.MAX_BODY + 10) + b"]"
        assert (
            drive(guard, http_scope("POST", "/api/imports", headers=[JSON_TYPE]), Body(big)).status
            == 200
        )
        refused_with(
            drive(guard, http_scope("POST", "/api/things", headers=[JSON_TYPE]), Body(big)),
            413,
            "The request body is larger than 64 KiB.",
        )
        huge = [(b"content-length", str(3 * 1024 * 1024).encode()), JSON_TYPE]
        refused_with(
            drive(guard, http_scope("POST", "/api/imports", headers=huge)),
            413,
            "The request body is larger than 2 MiB.",
        )

    @pytest.mark.parametrize(
        ("content_type", "status"),
        [
            (b"application/json", 200),
            (b"Application/JSON; charset=utf-8", 200),
            (b"application/merge-patch+json", 200),
            (b"text/plain", 415),
            (b"application/x-www-form-urlencoded", 415),
            (b"application/jsonp", 415),
            (None, 415),
        ],
    )
    def test_a_body_must_be_json_whatever_the_parameters(self, content_type, status):
        headers = [(b"content-type", content_type)] if content_type else []
        sent = drive(edge.BodyGuard(Inner()), http_scope("PATCH", headers=headers), Body(b"{}"))
        assert sent.status == status

    def test_an_empty_body_needs_no_content_type(self):
        inner = Inner()
        assert drive(edge.BodyGuard(inner), http_scope("POST"), Body(b"")).status == 200
        assert inner.scopes[0][BODY] == b""

    def test_a_client_that_leaves_mid_body_gets_nothing_and_reaches_nothing(self):
        inner = Inner()
        sent = drive(
            edge.BodyGuard(inner),
            http_scope("POST", headers=[JSON_TYPE]),
            Body(b'{"name":', disconnect=True),
        )
        assert sent.messages == [] and inner.scopes == []


class TestHeaderLimit:
    def test_a_line_of_exactly_the_limit_passes_one_byte_more_is_431(self):
        limit = edge.HeaderLimit(Inner())
        name = b"x-big"
        fits = [(name, b"v" * (edge.MAX_HEADER_LINE - len(name)))]
        assert drive(limit, http_scope(headers=fits)).status == 200
        over = [(name, b"v" * (edge.MAX_HEADER_LINE - len(name) + 1))]
        refused_with(
            drive(limit, http_scope(headers=over)),
            431,
            "A request header line is longer than 16 KiB.",
        )

    def test_the_headers_in_all_count_as_on_the_wire_and_over_64_kib_are_431(self):
        # Lines of 1,020 + 4 bytes (": " and CRLF): 64 of them are exactly 64 KiB.
        lines = [(b"x-h%02d" % n, b"v" * (1020 - 5)) for n in range(64)]
        inner = Inner()
        assert drive(edge.HeaderLimit(inner), http_scope(headers=lines)).status == 200
        one_more_byte = [*lines[:-1], (lines[-1][0], lines[-1][1] + b"v")]
        refused_with(
            drive(edge.HeaderLimit(inner), http_scope(headers=one_more_byte)),
            431,
            "The headers are longer than 64 KiB.",
        )
        assert len(inner.scopes) == 1

    def test_other_scopes_pass(self):
        inner = Inner()
        asyncio.run(edge.HeaderLimit(inner, line=1, total=1)({"type": "lifespan"}, Body(), Sent()))
        assert inner.scopes == [{"type": "lifespan"}]


class TestInFlightLimit:
    def test_past_the_limit_a_503_at_once_and_a_slot_freed_is_a_slot_taken(self, caplog):
        inner = Inner()
        limit = edge.InFlightLimit(inner, limit=2, log_every=3600)

        async def main() -> tuple[list[Sent], Sent, Sent]:
            inner.gate = asyncio.Event()
            held = [Sent(), Sent()]
            tasks = [asyncio.create_task(limit(http_scope(), Body(), s)) for s in held]
            await until(lambda: inner.waiting == 2)
            refused = [Sent() for _ in range(3)]
            for sent in refused:
                await limit(http_scope(), Body(), sent)
            inner.gate.set()
            await asyncio.gather(*tasks)
            after = Sent()
            await limit(http_scope(), Body(), after)
            return held, refused[0], after

        with caplog.at_level(logging.WARNING, logger="paradarum.web"):
            held, refused, after = asyncio.run(main())
        assert [s.status for s in held] == [200, 200]
        refused_with(refused, 503, web_errors.OVERLOADED)
        assert refused.header("retry-after") == ["1"]
        assert after.status == 200 and limit.in_flight == 0
        # One line for the three refusals while it lasted, not one each.
        lines = [r for r in caplog.records if r.name == "paradarum.web"]
        assert len(lines) == 1 and "2 requests in flight" in lines[0].getMessage()

    def test_a_request_that_fails_gives_its_slot_back(self):
        limit = edge.InFlightLimit(Inner(fail="before"), limit=1)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                drive(limit, http_scope())
        assert limit.in_flight == 0


class TestClientShare:
    def test_one_address_past_its_share_is_429_while_others_are_served(self):
        inner = Inner()
        share = edge.ClientShare(inner, limit=2)

        async def main() -> tuple[Sent, Sent]:
            inner.gate = asyncio.Event()
            tasks = [asyncio.create_task(share(http_scope(), Body(), Sent())) for _ in range(2)]
            await until(lambda: inner.waiting == 2)
            hog, other = Sent(), Sent()
            await share(http_scope(), Body(), hog)
            other_task = asyncio.create_task(share(http_scope(peer="192.0.2.10"), Body(), other))
            await until(lambda: inner.waiting == 3)
            assert share.in_flight == {PEER: 2, "192.0.2.10": 1}
            inner.gate.set()
            await asyncio.gather(*tasks, other_task)
            return hog, other

        hog, other = asyncio.run(main())
        refused_with(hog, 429, web_errors.CLIENT_BUSY)
        assert hog.header("retry-after") == ["1"]
        assert other.status == 200
        assert share.in_flight == {}  # nothing left behind for addresses gone

    def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_share(self):
        inner = Inner()
        share = edge.ClientShare(inner, limit=1, trusted=[ipaddress.ip_network("10.0.0.0/8")])

        def via_proxy(client: str) -> dict[str, Any]:
            return http_scope(peer="10.0.0.2", headers=[(b"x-forwarded-for", client.encode())])

        async def main() -> list[int | None]:
            inner.gate = asyncio.Event()
            first = asyncio.create_task(share(via_proxy("203.0.113.1"), Body(), Sent()))
            await until(lambda: inner.waiting == 1)
            second, same = Sent(), Sent()
            second_task = asyncio.create_task(share(via_proxy("203.0.113.2"), Body(), second))
            await until(lambda: inner.waiting == 2)
            await share(via_proxy("203.0.113.1"), Body(), same)
            inner.gate.set()
            await asyncio.gather(first, second_task)
            return [second.status, same.status]

        assert asyncio.run(main()) == [200, 429]
        assert share.in_flight == {}


@pytest.mark.parametrize(
    ("query", "carries"),
    [
        (b"api_key=abc", True),
        (b"page=2&Token=abc", True),
        (b"ACCESS_TOKEN=abc", True),
        (b"q=pdm_abc", True),
        (b"q=%70dm_abc", True),  # percent-encoded
        (b"q=x+pdm_abc", True),  # after a space
        (b"a=eyJhbGciOi.eyJzdWIiOi.sig", True),
        (b"key", True),  # a name alone
        (b"", False),
        (b"page=2&limit=10", False),
        (b"cursor=abcpdm_def", False),  # inside an opaque value
        (b"monkey=1&keys=2", False),
        (b"q=eyJ", False),
    ],
)
def test_credential_in_query(query, carries):
    assert edge.credential_in_query(query) is carries


def make_edge(app: Any, **options: Any) -> edge.Edge:
    return edge.Edge(app, **{"max_in_flight": 10, "max_per_client": 5, **options})


class TestEdge:
    def test_api_answers_get_the_api_headers_and_no_store_unless_they_say_otherwise(self):
        sent = drive(make_edge(Inner()), http_scope())
        assert sent.header("content-security-policy") == [
            "default-src 'none'; frame-ancestors 'none'"
        ]
        assert sent.header("cache-control") == ["no-store"]
        for name, value in (
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ):
            assert sent.header(name) == [value]
        cached = drive(make_edge(Inner(headers=[(b"cache-control", b"max-age=60")])), http_scope())
        assert cached.header("cache-control") == ["max-age=60"]  # kept, not doubled

    def test_pages_get_the_page_policy_and_no_cache_control_of_the_edge_s(self):
        sent = drive(make_edge(Inner()), http_scope(path="/account"))
        (policy,) = sent.header("content-security-policy")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert sent.header("cache-control") == []
        assert sent.header("x-frame-options") == ["DENY"]

    def test_a_credential_in_an_api_query_is_401_and_elsewhere_is_not_the_edge_s_concern(self):
        inner = Inner()
        sent = drive(make_edge(inner), http_scope(query=b"api_key=" + keys.PREFIX.encode() + b"x"))
        assert sent.status == 401 and inner.scopes == []
        assert sent.header("www-authenticate")
        assert sent.header("cache-control") == ["no-store"]  # refusals get the headers too
        assert drive(make_edge(inner), http_scope(path="/signin", query=b"token=x")).status == 200

    def test_a_header_refusal_comes_before_the_credential_check_and_the_body(self):
        inner = Inner()
        body = Body(b"{}")
        headers = [(b"x-big", b"v" * edge.MAX_HEADER_LINE), JSON_TYPE]
        sent = drive(make_edge(inner), http_scope("POST", headers=headers, query=b"token=x"), body)
        assert sent.status == 431 and body.read == 0 and inner.scopes == []

    def test_api_bodies_are_guarded_and_handed_on(self):
        inner = Inner()
        sent = drive(make_edge(inner), http_scope("POST", headers=[JSON_TYPE]), Body(b"[1]"))
        assert sent.status == 200 and inner.scopes[0][BODY] == b"[1]"
        big = [(b"content-length", str(edge.MAX_BODY + 1).encode()), JSON_TYPE]
        assert drive(make_edge(inner), http_scope("POST", headers=big)).status == 413

    def test_an_error_before_the_answer_is_a_500_envelope_logged_with_its_traceback(self, caplog):
        handler = make_edge(Inner(fail="before"))
        with caplog.at_level(logging.ERROR):
            sent = drive(handler, http_scope())
        refused_with(sent, 500, web_errors.SERVER_ERROR)
        assert "inner detail" not in json.dumps(sent.json())
        assert sent.header("cache-control") == ["no-store"]
        (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert record.exc_info is not None and "inner detail" in str(record.exc_info[1])
        assert handler.in_flight.in_flight == 0 and handler.share.in_flight == {}

    def test_an_error_after_the_answer_started_is_left_to_the_server(self):
        handler = make_edge(Inner(fail="after"))
        sent = Sent()
        with pytest.raises(RuntimeError, match="failed while answering"):
            asyncio.run(handler(http_scope(), Body(), sent))
        assert sent.status == 200  # no second answer started
        assert handler.in_flight.in_flight == 0 and handler.share.in_flight == {}

    def test_the_limit_in_flight_is_checked_before_the_client_s_share(self):
        inner = Inner()
        handler = make_edge(inner, max_in_flight=1, max_per_client=1)

        async def main() -> Sent:
            inner.gate = asyncio.Event()
            task = asyncio.create_task(handler(http_scope(), Body(), Sent()))
            await until(lambda: inner.waiting == 1)
            refused = Sent()
            await handler(http_scope(), Body(), refused)
            inner.gate.set()
            await task
            return refused

        refused = asyncio.run(main())
        assert refused.status == 503  # the worker is full: not the client's fault
        assert refused.header("x-content-type-options") == ["nosniff"]

    def test_other_scopes_go_straight_to_the_app(self):
        inner = Inner()
        sent = Sent()
        asyncio.run(make_edge(inner, writer=AccessLogWriter())({"type": "lifespan"}, Body(), sent))
        assert inner.scopes == [{"type": "lifespan"}]
        assert sent.headers == []  # untouched: no security headers added


class TestEdgeAccessLog:
    def entries(self, log_lines: io.StringIO) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        return [entry for entry in lines if entry["logger"] == "paradarum.access"]

    def test_one_line_per_request_with_its_final_status_and_never_the_query(self, log_lines):
        secret = keys.PREFIX + secrets.token_urlsafe(24)
        handler = make_edge(Inner(), writer=AccessLogWriter())
        drive(handler, http_scope("GET", "/api/things", query=b"page=2&filter=mine"))
        drive(handler, http_scope("GET", "/api/things", query=b"api_key=" + secret.encode()))
        drive(handler, http_scope("GET", f"/api/keys/{secret}"))
        drive(handler, http_scope("POST", "/api/things", headers=[(b"content-length", b"x")]))
        entries = self.entries(log_lines)
        assert [(e["method"], e["status"]) for e in entries] == [
            ("GET", 200),
            ("GET", 401),
            ("GET", 200),
            ("POST", 400),
        ]
        assert entries[0]["path"] == entries[1]["path"] == "/api/things"
        assert entries[2]["path"].startswith("/api/keys/") and secret not in entries[2]["path"]
        text = log_lines.getvalue()
        assert secret not in text and secret[len(keys.PREFIX) :] not in text
        assert "page=2" not in text and "?" not in text
        for entry in entries:
            assert entry["level"] == "info" and entry["message"] == "request"
            assert entry["client"] == PEER
            assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0

    def test_refusals_and_failures_are_logged_with_the_status_sent(self, log_lines):
        inner = Inner()
        handler = make_edge(inner, writer=AccessLogWriter(), max_in_flight=1)

        async def main() -> None:
            inner.gate = asyncio.Event()
            task = asyncio.create_task(handler(http_scope(path="/api/slow"), Body(), Sent()))
            await until(lambda: inner.waiting == 1)
            await handler(http_scope(path="/api/refused"), Body(), Sent())
            inner.gate.set()
            await task

        asyncio.run(main())
        drive(
            make_edge(Inner(fail="before"), writer=AccessLogWriter()), http_scope(path="/api/boom")
        )
        statuses = {e["path"]: e["status"] for e in self.entries(log_lines)}
        assert statuses == {"/api/refused": 503, "/api/slow": 200, "/api/boom": 500}

    def test_the_client_is_the_one_trusted_proxies_forward_for_or_a_dash(self, log_lines):
        handler = make_edge(
            Inner(), writer=AccessLogWriter(), trusted=[ipaddress.ip_network("10.0.0.0/8")]
        )
        forwarded = [(b"x-forwarded-for", b"192.0.2.50, 10.0.0.9")]
        drive(handler, http_scope(peer="10.0.0.1", headers=forwarded))
        drive(
            handler, http_scope(peer=PEER, headers=forwarded)
        )  # not a proxy: its word is not taken
        drive(handler, http_scope(peer=None))
        assert [e["client"] for e in self.entries(log_lines)] == ["192.0.2.50", PEER, "-"]

    def test_a_client_that_left_before_an_answer_is_still_logged(self, log_lines):
        handler = make_edge(Inner(), writer=AccessLogWriter())
        drive(handler, http_scope("POST", headers=[JSON_TYPE]), Body(b"{", disconnect=True))
        (entry,) = self.entries(log_lines)
        assert entry["method"] == "POST" and entry["status"] == 0  # nothing was sent
