"""Purge queueing and delivery on SQLite and PostgreSQL: claims, fencing, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import delete, select

from paradarum import hostnames
from paradarum.db.tables import audit_events, purge_deliveries, zones
from paradarum.errors import NotYourHosts, RateLimited, ValidationFailed, ZoneTaken
from paradarum.runtime import Runtime, open_database
from paradarum.services.context import ClientInfo, CredentialKind, Principal
from paradarum.services.jobs import JobQueue, Outcome, Worker
from paradarum.services.purge_jobs import PurgeJob, purge_kind
from paradarum.services.purges import PurgeNotFound
from paradarum.services.roles import Role
from tests.cache import RecordingNode, recording_node
from tests.support import run

CLIENT = ClientInfo(address="203.0.113.7", user_agent="test")


@pytest.fixture
def nodes() -> Iterator[list[RecordingNode]]:
    with ExitStack() as stack:
        yield [stack.enter_context(recording_node()) for _ in range(2)]


@pytest.fixture
def settings_overrides(nodes: list[RecordingNode]) -> dict[str, object]:
    return {
        "cache_nodes": [node.base_url for node in nodes],
        "purge_max_attempts": 3,
        "purge_retry_seconds": 2.0,
        "purges_per_account": 5,
        "purge_window_seconds": 60,
    }


def principal(
    runtime: Runtime,
    email: str = "ada@example.com",
    zones: tuple[str, ...] = ("www.example.com", "example.com"),
) -> Principal:
    """An account whose active zones are ``zones``, calling with a key."""
    account = run(runtime.accounts.signup(email=email, password="x" * 12 + "Qz!", client=CLIENT))
    for zone in zones:
        run(runtime.zones.add_for(email=email, hostname=zone, verified=True))
    return Principal(
        account_id=account.id, kind=CredentialKind.KEY, key_prefix="pdm_Abcd", role=Role.PURGER
    )


def request(runtime: Runtime, who: Principal, **what: object):
    return run(runtime.purges.request(principal=who, client=CLIENT, **what))


def detail(runtime: Runtime, who: Principal, purge_id: int):
    return run(runtime.purges.get(principal=who, purge_id=purge_id))


def deliver(delivery: Worker[PurgeJob]) -> int:
    """One pass of the delivery loop: claim what is due, send, record."""
    return run(delivery.run_once())


def purge_worker(db, clock, **params: object) -> Worker[PurgeJob]:
    """Purge delivery in another process or instance: its own queue on ``db``."""
    return JobQueue(db=db, clock=clock).add(purge_kind(db=db, **params))  # type: ignore[arg-type]


def deliveries(runtime: Runtime, purge_id: int) -> list:
    with runtime.db.reading() as conn:
        return conn.execute(
            select(purge_deliveries)
            .where(purge_deliveries.c.purge_id == purge_id)
            .order_by(purge_deliveries.c.id)
        ).all()


def test_a_purge_queues_one_delivery_per_node_and_is_audited(frozen_runtime, nodes):
    who = principal(frozen_runtime)
    info = request(frozen_runtime, who, urls=["https://www.example.com/x"] * 2)
    assert info.kind == "urls" and info.targets == ["https://www.example.com/x"]
    assert info.status == "queued"
    rows = deliveries(frozen_runtime, info.id)
    assert [(row.node, row.label, row.status, row.attempts) for row in rows] == [
        (node.base_url, f"node-{index + 1}", "queued", 0) for index, node in enumerate(nodes)
    ]
    assert all(node.requests == [] for node in nodes)  # nothing is sent inline
    with frozen_runtime.db.reading() as conn:
        event = conn.execute(
            select(audit_events).where(audit_events.c.event == "purge.requested")
        ).one()
    assert event.account_id == who.account_id
    assert event.actor_type == "key" and event.key_prefix == "pdm_Abcd"


def test_invalid_purges_are_refused_before_they_count_against_the_limit(frozen_runtime):
    who = principal(frozen_runtime)
    for _ in range(3):
        with pytest.raises(ValidationFailed):
            request(frozen_runtime, who, urls=["ftp://x/"])
    for _ in range(3):
        with pytest.raises(NotYourHosts):
            request(frozen_runtime, who, urls=["https://elsewhere.example/"])
    for _ in range(5):
        request(frozen_runtime, who, everything=True)
    with pytest.raises(RateLimited) as caught:
        request(frozen_runtime, who, everything=True)
    assert 1 <= caught.value.retry_after <= 60
    # The limit is per account.
    other = principal(frozen_runtime, "bob@example.com", zones=("bob.example",))
    request(frozen_runtime, other, everything=True)
    # And a hostname is active in one account only.
    with pytest.raises(ZoneTaken):
        run(
            frozen_runtime.zones.add_for(
                email="bob@example.com", hostname="www.example.com", verified=True
            )
        )


def test_another_accounts_purge_is_not_found(frozen_runtime):
    ada = principal(frozen_runtime)
    bob_account = run(
        frozen_runtime.accounts.signup(
            email="bob@example.com", password="x" * 12 + "Qz!", client=CLIENT
        )
    )
    info = request(frozen_runtime, ada, tags=["t"])
    assert detail(frozen_runtime, ada, info.id).purge == info
    with pytest.raises(PurgeNotFound):
        bob = Principal(account_id=bob_account.id, kind=CredentialKind.SESSION)
        run(frozen_runtime.purges.get(principal=bob, purge_id=info.id))


def test_delivery_sends_the_right_request_to_every_node(frozen_runtime, nodes):
    who = principal(frozen_runtime)
    by_url = request(
        frozen_runtime,
        who,
        urls=["https://WWW.Example.com/a/b?x=1&y=%20", "http://example.com:8080/"],
    )
    by_tag = request(frozen_runtime, who, tags=["t1", "t-2"])
    everything = request(frozen_runtime, who, everything=True)

    assert deliver(frozen_runtime.purge_delivery) == 6
    for node in nodes:
        # Deliveries of different purges run in parallel: compare without order.
        purged = [(r.path, r.headers.get("host")) for r in node.requests if r.method == "PURGE"]
        assert sorted(purged) == [("/", "example.com:8080"), ("/a/b?x=1&y=%20", "www.example.com")]
        bans = [r.headers for r in node.requests if r.method == "BAN"]
        assert {
            (h.get("x-purge-hosts"), h.get("x-purge-tags"), h.get("x-purge-all")) for h in bans
        } == {
            ("example.com www.example.com", "t1 t-2", None),
            ("example.com www.example.com", None, "1"),
        }
        assert len(node.requests) == 4
    for purge_id in (by_url.id, by_tag.id, everything.id):
        result = detail(frozen_runtime, who, purge_id)
        assert result.purge.status == "done"
        assert result.purge.completed_at is not None
        assert [(n.label, n.status, n.attempts, n.reason) for n in result.nodes] == [
            ("node-1", "done", 1, None),
            ("node-2", "done", 1, None),
        ]
    assert deliver(frozen_runtime.purge_delivery) == 0  # nothing delivered twice


def test_a_failing_node_is_retried_with_backoff_then_marked_failed(frozen_runtime, nodes, clock):
    nodes[1].status = 503
    who = principal(frozen_runtime)
    delivery = frozen_runtime.purge_delivery
    info = request(frozen_runtime, who, tags=["t"])

    assert deliver(delivery) == 2
    result = detail(frozen_runtime, who, info.id)
    assert result.purge.status == "running"
    good, bad = result.nodes
    assert good.status == "done"
    assert (bad.status, bad.attempts, bad.reason) == (
        "queued",
        1,
        "the cache node answered HTTP 503",
    )
    assert (bad.next_attempt_at - clock.now).total_seconds() == 2

    assert deliver(delivery) == 0  # not due yet
    clock.advance(2)
    assert deliver(delivery) == 1
    clock.advance(3)
    assert deliver(delivery) == 0  # the second retry waits 4 s
    clock.advance(1)
    assert deliver(delivery) == 1
    clock.advance(3600)
    assert deliver(delivery) == 0  # three attempts is the most

    result = detail(frozen_runtime, who, info.id)
    assert result.purge.status == "failed"
    assert result.purge.completed_at == clock.now - timedelta(seconds=3600)
    assert (result.nodes[1].status, result.nodes[1].attempts) == ("failed", 3)
    assert result.nodes[1].reason == "the cache node answered HTTP 503"
    assert len(nodes[0].requests) == 1 and len(nodes[1].requests) == 3


def test_a_retry_that_succeeds_completes_the_purge(frozen_runtime, nodes, clock):
    nodes[0].status = 500
    who = principal(frozen_runtime)
    info = request(frozen_runtime, who, everything=True)
    deliver(frozen_runtime.purge_delivery)
    nodes[0].status = 200
    clock.advance(2)
    deliver(frozen_runtime.purge_delivery)
    result = detail(frozen_runtime, who, info.id)
    assert result.purge.status == "done"
    assert [(n.status, n.attempts, n.reason) for n in result.nodes] == [
        ("done", 2, None),
        ("done", 1, None),
    ]


def test_a_claim_excludes_other_workers_until_it_expires_and_then_is_fenced(
    frozen_runtime, settings, clock, nodes
):
    who = principal(frozen_runtime)
    info = request(frozen_runtime, who, everything=True)
    crashed = frozen_runtime.purge_delivery
    other_db = open_database(settings)  # another process or instance
    other = purge_worker(other_db, clock, lease_seconds=120)
    try:
        held = run(crashed.claim(10))
        assert len(held) == 2
        assert run(other.claim(10)) == []  # claimed, even though nothing was recorded
        clock.advance(119)
        assert run(other.claim(10)) == []
        clock.advance(1)  # the lease is over: the worker is presumed dead
        taken = run(other.claim(10))
        assert [claim.attempt for claim in taken] == [2, 2]
        # The first worker wakes up late: its result no longer counts.
        assert run(crashed.record(held[0], Outcome.ok())) is False
        for claim in taken:
            assert run(other.record(claim, Outcome.ok())) is True
    finally:
        other_db.close()
    result = detail(frozen_runtime, who, info.id)
    assert result.purge.status == "done"
    assert [n.attempts for n in result.nodes] == [2, 2]


def test_several_workers_deliver_every_purge_exactly_once(runtime, settings, nodes):
    who = principal(runtime)
    urls = [f"https://www.example.com/page/{n}" for n in range(25)]
    for first in range(0, 25, 5):  # five purges (the limit) of five URLs each
        request(runtime, who, urls=urls[first : first + 5])
    databases = [open_database(settings) for _ in range(3)]
    workers = [purge_worker(db, runtime.clock, batch_size=1, concurrency=2) for db in databases]

    async def work(worker: Worker[PurgeJob]) -> None:
        while await worker.run_once():
            pass

    async def together() -> None:
        await asyncio.gather(*(work(worker) for worker in workers))

    try:
        run(together())
    finally:
        for db in databases:
            db.close()
    for node in nodes:
        assert sorted(r.path for r in node.requests) == sorted(f"/page/{n}" for n in range(25))
    page = run(runtime.purges.list(principal=who, limit=100))
    assert {item.status for item in page.items} == {"done"}


def test_one_accounts_flood_does_not_delay_another_accounts_purge(frozen_runtime, nodes):
    """Delivery takes accounts in turn: a purge queued after another account's 5
    purges is among the first claimed, not the last."""
    flood = principal(frozen_runtime)
    for n in range(5):
        request(frozen_runtime, flood, urls=[f"https://www.example.com/flood/{n}"])
    quiet_account = run(
        frozen_runtime.accounts.signup(
            email="quiet@example.com", password="x" * 12 + "Qz!", client=CLIENT
        )
    )
    run(
        frozen_runtime.zones.add_for(
            email="quiet@example.com", hostname="quiet.example", verified=True
        )
    )
    quiet = Principal(
        account_id=quiet_account.id,
        kind=CredentialKind.KEY,
        key_prefix="pdm_Qqqq",
        role=Role.PURGER,
    )
    late = request(frozen_runtime, quiet, urls=["https://quiet.example/now"])
    claims = run(frozen_runtime.purge_delivery.claim(4))
    assert {claim.job.purge_id for claim in claims} >= {late.id}
    assert sum(claim.job.purge_id == late.id for claim in claims) == 2  # both nodes


def test_purges_are_listed_newest_first_across_pages(frozen_runtime, clock):
    who = principal(frozen_runtime)
    made = []
    for n in range(5):
        made.append(request(frozen_runtime, who, tags=[f"t{n}"]))
        if n % 2:
            clock.advance(1)
    seen, cursor = [], None
    while True:
        page = run(frozen_runtime.purges.list(principal=who, limit=2, cursor=cursor))
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [info.id for info in reversed(made)]


def test_node_requests_and_their_urls_are_not_logged_at_info(frozen_runtime, nodes, caplog):
    """The customer's URLs (query strings included) stay out of the service's log."""
    import logging

    from paradarum import logs

    saved = logging.getLogger().handlers[:], logging.getLogger().level
    logs.configure("INFO")
    logging.getLogger().handlers[:] = saved[0]  # keep pytest's capture
    try:
        who = principal(frozen_runtime)
        request(frozen_runtime, who, urls=["https://www.example.com/private?token=abc123"])
        with caplog.at_level(logging.INFO):
            assert deliver(frozen_runtime.purge_delivery) == 2
        assert nodes[0].requests  # it was delivered
        assert not [r for r in caplog.records if "abc123" in r.getMessage()]
    finally:
        logging.getLogger().setLevel(saved[1])


def move_zone(runtime: Runtime, hostname: str, *, to: str) -> None:
    """The domain changes hands: the holder's zone goes, the new owner's is active."""
    with runtime.db.writing() as conn:
        conn.execute(delete(zones).where(zones.c.hostname == hostname))
    run(runtime.zones.add_for(email=to, hostname=hostname, verified=True))


def test_a_purge_accepted_before_its_zone_moved_never_reaches_the_new_owners_objects(
    frozen_runtime, nodes
):
    ada = principal(frozen_runtime, zones=("www.example.com", "example.com"))
    principal(frozen_runtime, "bob@example.com", zones=("bob.example",))
    by_url = request(frozen_runtime, ada, urls=["https://www.example.com/x"])
    only_moved = request(frozen_runtime, ada, urls=["https://example.com/"])
    by_tag = request(frozen_runtime, ada, tags=["t"])
    everything = request(frozen_runtime, ada, everything=True)

    move_zone(frozen_runtime, "www.example.com", to="bob@example.com")
    move_zone(frozen_runtime, "example.com", to="bob@example.com")
    assert deliver(frozen_runtime.purge_delivery) == 8

    # Nothing reached the cache nodes: every zone of those purges is someone else's now.
    assert all(node.requests == [] for node in nodes)
    for purge_id in (by_url.id, only_moved.id, by_tag.id, everything.id):
        result = detail(frozen_runtime, ada, purge_id)
        assert result.purge.status == "failed"
        assert [(n.status, n.attempts, n.reason) for n in result.nodes] == [
            ("failed", 1, "its zones are no longer this account's")
        ] * 2
    assert deliver(frozen_runtime.purge_delivery) == 0  # not retried


def test_a_purge_reaches_only_the_zones_its_account_still_holds_at_send_time(frozen_runtime, nodes):
    ada = principal(frozen_runtime, zones=("www.example.com", "example.com"))
    principal(frozen_runtime, "bob@example.com", zones=("bob.example",))
    urls = request(frozen_runtime, ada, urls=["https://www.example.com/x", "https://example.com/y"])
    everything = request(frozen_runtime, ada, everything=True)

    move_zone(frozen_runtime, "www.example.com", to="bob@example.com")
    assert deliver(frozen_runtime.purge_delivery) == 4

    for node in nodes:
        assert sorted((r.method, r.headers.get("host"), r.path) for r in node.requests) == [
            ("BAN", node.base_url.removeprefix("http://"), "/"),
            ("PURGE", "example.com", "/y"),
        ]
        (ban,) = [r.headers for r in node.requests if r.method == "BAN"]
        assert ban.get("x-purge-hosts") == "example.com"
    for purge_id in (urls.id, everything.id):
        assert detail(frozen_runtime, ada, purge_id).purge.status == "done"


def test_a_wildcard_does_not_reach_hostnames_another_zone_owns_more_precisely(
    frozen_runtime, nodes
):
    ada = principal(frozen_runtime, zones=("*.example.com", "www.example.com"))
    principal(frozen_runtime, "bob@example.com", zones=("shop.example.com", "*.eu.example.com"))

    # By URL: the most specific zone owns the host, so these are Bob's.
    for url in ("https://shop.example.com/", "https://a.eu.example.com/"):
        with pytest.raises(NotYourHosts) as refused:
            request(frozen_runtime, ada, urls=[url])
        assert refused.value.errors["urls"] == [
            f"{hostnames.url_host(url)} is not one of your active zones."
        ]
    request(frozen_runtime, ada, urls=["https://blog.example.com/", "https://www.example.com/"])

    # By ban: the wildcard's ban leaves Bob's zones alone; Ada's plain zone is banned as is.
    request(frozen_runtime, ada, everything=True)
    request(frozen_runtime, ada, tags=["t"])
    assert deliver(frozen_runtime.purge_delivery) == 6
    for node in nodes:
        bans = {
            (h.get("x-purge-hosts"), h.get("x-purge-except-hosts"), h.get("x-purge-tags"))
            for h in (r.headers for r in node.requests if r.method == "BAN")
        }
        assert bans == {
            ("www.example.com", None, None),
            ("*.example.com", "*.eu.example.com shop.example.com", None),
            ("www.example.com", None, "t"),
            ("*.example.com", "*.eu.example.com shop.example.com", "t"),
        }

    # A key limited to the wildcard leaves the account's own exact zone alone too.
    wildcard = next(
        z for z in run(frozen_runtime.zones.list_for("ada@example.com")) if z.hostname[0] == "*"
    )
    limited = msgspec.structs.replace(ada, zone_ids=(wildcard.id,))
    with pytest.raises(NotYourHosts):
        request(frozen_runtime, limited, urls=["https://www.example.com/"])
