"""200 simultaneous correct sign-ins (issue 11), while a key list and a revoke are
timed one after the other on a connection of their own: password hashing has its
own bounded queue, so these must stay fast (goal: p95 < 100 ms).

The sign-ins come from 127.0.0.1 and the timed requests from another client,
127.0.0.2 (the loopback network answers every 127.x address): the edge holds each
client to its share of requests in flight (``PARADARUM_MAX_REQUESTS_PER_CLIENT``),
so one client's burst answers its own extra requests with ``429`` and must not
slow anyone else's work, which is what is timed."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

# The address the timed requests come from: another client than the crowd's.
TIMED_CLIENT = "127.0.0.2"


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(values), 1) if values else 0.0,
        "p95_ms": round(percentile(values, 0.95), 1),
        "max_ms": round(max(values, default=0.0), 1),
    }


async def _burst(
    base_url: str, body: dict[str, str], revocable: list[tuple[str, int]], sign_ins: int
) -> dict[str, Any]:
    lists: list[float] = []
    revokes: list[float] = []
    failures: list[int] = []
    limits = httpx.Limits(max_connections=sign_ins + 10, max_keepalive_connections=sign_ins + 10)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as crowd,
        httpx.AsyncClient(
            base_url=base_url,
            timeout=30,
            transport=httpx.AsyncHTTPTransport(local_address=TIMED_CLIENT),
        ) as timed,
    ):
        lister = {"X-API-Key": revocable[0][0]}

        async def one_pair() -> None:
            started = time.perf_counter()
            listed = await timed.get("/api/account/apikeys", headers=lister)
            lists.append((time.perf_counter() - started) * 1000)
            if listed.status_code != 200:
                failures.append(listed.status_code)
            if len(revocable) > 1:
                credential, key_id = revocable.pop()
                started = time.perf_counter()
                revoked = await timed.delete(
                    f"/api/account/apikeys/{key_id}", headers={"X-API-Key": credential}
                )
                revokes.append((time.perf_counter() - started) * 1000)
                if revoked.status_code != 200:
                    failures.append(revoked.status_code)

        await one_pair()  # the timed connection is open before the crowd arrives
        lists.clear()
        revokes.clear()
        started = time.perf_counter()
        crowd_done = asyncio.gather(
            *(crowd.post("/api/auth/login", json=body) for _ in range(sign_ins))
        )
        while not crowd_done.done():
            await one_pair()
        answers = await crowd_done
        elapsed = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for answer in answers:
        statuses[str(answer.status_code)] = statuses.get(str(answer.status_code), 0) + 1
    return {
        "sign_ins": sign_ins,
        "statuses": statuses,
        "burst_seconds": round(elapsed, 2),
        "key_list": summary(lists),
        "revoke": summary(revokes),
        "timed_failures": failures,
    }


def sign_in_burst(
    base_url: str,
    *,
    email: str,
    password: str,
    revocable: list[tuple[str, int]],
    sign_ins: int = 200,
) -> dict[str, Any]:
    """``revocable``: (credential, key id) pairs to revoke, the first one's key also
    lists (its own account's keys)."""
    body = {"email": email, "password": password}
    return asyncio.run(_burst(base_url, body, list(revocable), sign_ins))
