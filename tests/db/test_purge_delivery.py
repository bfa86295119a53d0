"""Purge queueing and delivery on SQLite and PostgreSQL: claims, fencing, retries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import pytest
from sqlalchemy import select

from paradarum.db.tables import audit_events, purge_deliveries
from paradarum.errors import RateLimited, ValidationFailed
from paradarum.runtime import Runtime, open_database
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.delivery import PurgeDelivery
from paradarum.services.purges import PurgeNotFound
from tests.cache import RecordingNode, recording_node

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


def principal(runtime: Runtime, email: str = "ada@example.com") -> Principal:
    account = runtime.accounts.signup(email=email, password="x" * 12, client=CLIENT)
    return Principal(account_id=account.id, kind="key", key_id=None, key_prefix="pdm_Abcd")


def deliveries(runtime: Runtime, purge_id: int) -> list:
    with runtime.db.reading() as conn:
        return conn.execute(
            select(purge_deliveries)
            .where(purge_deliveries.c.purge_id == purge_id)
            .order_by(purge_deliveries.c.id)
        ).all()


def test_a_purge_queues_one_delivery_per_node_and_is_audited(frozen_runtime, nodes):
    who = principal(frozen_runtime)
    info = frozen_runtime.purges.request(
        principal=who, client=CLIENT, urls=["https://a.example/x", "https://a.example/x"]
    )
    assert info.kind == "urls" and info.targets == ["https://a.example/x"]
    assert info.status == "queued"
    rows = deliveries(frozen_runtime, info.id)
    assert [(row.node, row.status, row.attempts) for row in rows] == [
        (node.base_url, "queued", 0) for node in nodes
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
            frozen_runtime.purges.request(principal=who, client=CLIENT, urls=["ftp://x/"])
    for _ in range(5):
        frozen_runtime.purges.request(principal=who, client=CLIENT, everything=True)
    with pytest.raises(RateLimited) as caught:
        frozen_runtime.purges.request(principal=who, client=CLIENT, everything=True)
    assert 1 <= caught.value.retry_after <= 60
    # The limit is per account.
    other = principal(frozen_runtime, "bob@example.com")
    frozen_runtime.purges.request(principal=other, client=CLIENT, everything=True)


def test_another_accounts_purge_is_not_found(frozen_runtime):
    ada, bob = principal(frozen_runtime), principal(frozen_runtime, "bob@example.com")
    info = frozen_runtime.purges.request(principal=ada, client=CLIENT, tags=["t"])
    assert frozen_runtime.purges.get(account_id=ada.account_id, purge_id=info.id).purge == info
    with pytest.raises(PurgeNotFound):
        frozen_runtime.purges.get(account_id=bob.account_id, purge_id=info.id)


def test_delivery_sends_the_right_request_to_every_node(frozen_runtime, nodes):
    who = principal(frozen_runtime)
    purges = frozen_runtime.purges
    by_url = purges.request(
        principal=who,
        client=CLIENT,
        urls=["https://WWW.Example.com/a/b?x=1&y=%20", "http://example.com:8080/"],
    )
    by_tag = purges.request(principal=who, client=CLIENT, tags=["t1", "t-2"])
    everything = purges.request(principal=who, client=CLIENT, everything=True)

    assert frozen_runtime.purge_delivery.run_once() == 6
    for node in nodes:
        # Deliveries of different purges run in parallel: compare without order.
        purged = [(r.path, r.headers.get("host")) for r in node.requests if r.method == "PURGE"]
        assert sorted(purged) == [("/", "example.com:8080"), ("/a/b?x=1&y=%20", "www.example.com")]
        bans = [r.headers for r in node.requests if r.method == "BAN"]
        assert {(h.get("x-purge-tags"), h.get("x-purge-all")) for h in bans} == {
            ("t1 t-2", None),
            (None, "1"),
        }
        assert len(node.requests) == 4
    for purge_id in (by_url.id, by_tag.id, everything.id):
        detail = purges.get(account_id=who.account_id, purge_id=purge_id)
        assert detail.purge.status == "done"
        assert detail.purge.completed_at is not None
        assert [(n.status, n.attempts, n.last_error) for n in detail.nodes] == [
            ("done", 1, None),
            ("done", 1, None),
        ]
    assert frozen_runtime.purge_delivery.run_once() == 0  # nothing delivered twice


def test_a_failing_node_is_retried_with_backoff_then_marked_failed(frozen_runtime, nodes, clock):
    nodes[1].status = 503
    who = principal(frozen_runtime)
    delivery = frozen_runtime.purge_delivery
    info = frozen_runtime.purges.request(principal=who, client=CLIENT, tags=["t"])

    assert delivery.run_once() == 2
    detail = frozen_runtime.purges.get(account_id=who.account_id, purge_id=info.id)
    assert detail.purge.status == "running"
    good, bad = detail.nodes
    assert good.status == "done"
    assert (bad.status, bad.attempts, bad.last_error) == (
        "queued",
        1,
        "HTTP 503 Service Unavailable",
    )
    assert (bad.next_attempt_at - clock.now).total_seconds() == 2

    assert delivery.run_once() == 0  # not due yet
    clock.advance(2)
    assert delivery.run_once() == 1
    clock.advance(3)
    assert delivery.run_once() == 0  # the second retry waits 4 s
    clock.advance(1)
    assert delivery.run_once() == 1
    clock.advance(3600)
    assert delivery.run_once() == 0  # three attempts is the most

    detail = frozen_runtime.purges.get(account_id=who.account_id, purge_id=info.id)
    assert detail.purge.status == "failed"
    assert detail.purge.completed_at == clock.now - timedelta(seconds=3600)
    assert (detail.nodes[1].status, detail.nodes[1].attempts) == ("failed", 3)
    assert detail.nodes[1].last_error == "HTTP 503 Service Unavailable"
    assert len(nodes[0].requests) == 1 and len(nodes[1].requests) == 3


def test_a_retry_that_succeeds_completes_the_purge(frozen_runtime, nodes, clock):
    nodes[0].status = 500
    who = principal(frozen_runtime)
    info = frozen_runtime.purges.request(principal=who, client=CLIENT, everything=True)
    frozen_runtime.purge_delivery.run_once()
    nodes[0].status = 200
    clock.advance(2)
    frozen_runtime.purge_delivery.run_once()
    detail = frozen_runtime.purges.get(account_id=who.account_id, purge_id=info.id)
    assert detail.purge.status == "done"
    assert [(n.status, n.attempts, n.last_error) for n in detail.nodes] == [
        ("done", 2, None),
        ("done", 1, None),
    ]


def test_a_claim_excludes_other_workers_until_it_expires_and_then_is_fenced(
    frozen_runtime, settings, clock, nodes
):
    who = principal(frozen_runtime)
    info = frozen_runtime.purges.request(principal=who, client=CLIENT, everything=True)
    crashed = frozen_runtime.purge_delivery
    other_db = open_database(settings)  # another process or instance
    other = PurgeDelivery(db=other_db, clock=clock, lease_seconds=120)
    try:
        held = crashed.claim(10)
        assert len(held) == 2
        assert other.claim(10) == []  # claimed, even though nothing was recorded
        clock.advance(119)
        assert other.claim(10) == []
        clock.advance(1)  # the lease is over: the worker is presumed dead
        taken = other.claim(10)
        assert [claim.attempt for claim in taken] == [2, 2]
        # The first worker wakes up late: its result no longer counts.
        assert crashed.record(held[0], None) is False
        for claim in taken:
            assert other.record(claim, None) is True
    finally:
        other_db.close()
    detail = frozen_runtime.purges.get(account_id=who.account_id, purge_id=info.id)
    assert detail.purge.status == "done"
    assert [n.attempts for n in detail.nodes] == [2, 2]


def test_several_workers_deliver_every_purge_exactly_once(runtime, settings, nodes):
    who = principal(runtime)
    urls = [f"https://www.example.com/page/{n}" for n in range(25)]
    for first in range(0, 25, 5):  # five purges (the limit) of five URLs each
        runtime.purges.request(principal=who, client=CLIENT, urls=urls[first : first + 5])
    databases = [open_database(settings) for _ in range(3)]
    workers = [
        PurgeDelivery(db=db, clock=runtime.clock, batch_size=1, concurrency=2) for db in databases
    ]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def work(worker: PurgeDelivery) -> None:
        try:
            start.wait()
            while worker.run_once():
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in workers:
        worker.stop()
    for db in databases:
        db.close()
    assert errors == []
    for node in nodes:
        assert sorted(r.path for r in node.requests) == sorted(f"/page/{n}" for n in range(25))
    page = runtime.purges.list(account_id=who.account_id, limit=100)
    assert {item.status for item in page.items} == {"done"}


def test_purges_are_listed_newest_first_across_pages(frozen_runtime, clock):
    who = principal(frozen_runtime)
    made = []
    for n in range(5):
        made.append(frozen_runtime.purges.request(principal=who, client=CLIENT, tags=[f"t{n}"]))
        if n % 2:
            clock.advance(1)
    seen, cursor = [], None
    while True:
        page = frozen_runtime.purges.list(account_id=who.account_id, limit=2, cursor=cursor)
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [info.id for info in reversed(made)]
