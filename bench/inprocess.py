"""The app driven in-process, without a server or sockets: the key-authed
``GET /api/account`` timed many thousand times, so that costs far below wrk's
noise can be measured (issue 14: usage counting and address restrictions must
not move the hot path by more than 5%), and profiled (where the time goes).

The app is the one ``paradarum serve`` builds (``create_app``), on SQLite, with
the access log on and written (to /dev/null, through the same JSON handler)."""

from __future__ import annotations

import asyncio
import cProfile
import logging
import os
import pstats
import statistics
import time
import timeit
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bench.seed import Target, main_data, opened

from paradarum.logs import JsonFormatter
from paradarum.runtime import Runtime
from paradarum.services.auth import address_allowed
from paradarum.web.app import create_app


def _scope(key: str, path: str = "/api/account") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"user-agent", b"paradarum-bench"),
            (b"x-api-key", key.encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class Driver:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.statuses: set[int] = set()

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses.add(message["status"])

    async def run(self, key: str, iterations: int, path: str = "/api/account") -> float:
        """Microseconds of CPU per request. CPU time of this process, not wall time:
        on a shared machine the process is descheduled at random, and wall time
        would count that against whichever variant was running."""
        scope = _scope(key, path)
        app, send = self.app, self._send
        started = time.process_time()
        for _ in range(iterations):
            await app(dict(scope), _receive, send)
        return (time.process_time() - started) / iterations * 1e6


def _pairs(
    a: Callable[[], Any],
    b: Callable[[], Any],
    *,
    rounds: int,
) -> tuple[list[float], list[float]]:
    """``rounds`` timings of ``a`` and of ``b``, in ABBA order."""
    first: list[float] = []
    second: list[float] = []
    loop = asyncio.get_event_loop()
    for number in range(rounds):
        order = [(a, first), (b, second)] if number % 2 == 0 else [(b, second), (a, first)]
        for work, into in order:
            into.append(loop.run_until_complete(work()))
    return first, second


def _throughput_ratio(a_us: list[float], b_us: list[float]) -> float:
    """Throughput of A over throughput of B: the median of the per-round ratios of
    their times per request (B's over A's)."""
    return round(statistics.median(b / a for a, b in zip(a_us, b_us, strict=True)), 4)


def _noop(*_args: Any) -> None:
    return None


def _access_log_to_devnull() -> None:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


PROFILE_GROUPS = [
    ("access log line (logs.py)", ("paradarum/logs.py", "json/")),
    ("edge middlewares", ("paradarum/web/edge.py",)),
    ("routing and request", ("paradarum/web/routing.py", "paradarum/web/request.py")),
    (
        "key check (auth, keys, usage)",
        (
            "paradarum/services/auth.py",
            "paradarum/keys.py",
            "paradarum_client/keyformat.py",
            "paradarum/services/usage.py",
            "paradarum/ratelimit.py",
        ),
    ),
    ("database reads (sqlite3, engine)", ("paradarum/db/", "sqlite3", "execute", "fetchone")),
    (
        "account summary and shapes",
        (
            "paradarum/services/accounts.py",
            "paradarum/web/shapes.py",
            "paradarum/web/api/",
            "paradarum_client/",
        ),
    ),
    ("response (envelope, orjson, send)", ("paradarum/web/responses.py", "orjson", "dumps")),
]


def _profile(driver: Driver, key: str, iterations: int) -> dict[str, Any]:
    """cProfile over ``iterations`` requests: own time per group of code (cProfile
    inflates call-heavy code; the shares are a guide, the µs figures are not)."""
    profiler = cProfile.Profile()
    loop = asyncio.get_event_loop()
    profiler.enable()
    loop.run_until_complete(driver.run(key, iterations))
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = 0.0
    groups: dict[str, float] = {}
    top: list[tuple[float, str]] = []
    for (filename, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        where = f"{filename}:{line}({name})"
        top.append((tottime, where.replace(os.getcwd() + "/", "")))
        label = "other (asyncio, stdlib, driver)"
        for group, needles in PROFILE_GROUPS:
            if any(needle in where for needle in needles):
                label = group
                break
        groups[label] = groups.get(label, 0.0) + tottime
    top.sort(reverse=True)
    return {
        "groups_percent": {
            k: round(100 * v / total, 1) for k, v in sorted(groups.items(), key=lambda i: -i[1])
        },
        "top_functions": [
            {"percent": round(100 * t / total, 1), "function": where} for t, where in top[:15]
        ],
    }


def measure(target: Target, *, iterations: int, rounds: int) -> dict[str, Any]:
    _access_log_to_devnull()
    with opened(target) as runtime:
        data = asyncio.run(main_data(runtime))
        return _measure(runtime, data.key, data.restricted_key, iterations, rounds)


def _measure(
    runtime: Runtime, key: str, restricted: str, iterations: int, rounds: int
) -> dict[str, Any]:
    app = create_app(runtime=runtime)
    driver = Driver(app)
    no_log = runtime.settings.model_copy(update={"access_log": False})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(runtime.start())
    try:
        loop.run_until_complete(driver.run(key, iterations))  # warm up
        usage = runtime.usage

        async def counting() -> float:
            return await driver.run(key, iterations)

        async def not_counting() -> float:
            usage.succeeded = _noop  # type: ignore[method-assign]
            try:
                return await driver.run(key, iterations)
            finally:
                del usage.succeeded

        with_counts, without_counts = _pairs(counting, not_counting, rounds=rounds)

        async def plain() -> float:
            return await driver.run(key, iterations)

        async def restricted_key() -> float:
            return await driver.run(restricted, iterations)

        unrestricted_us, restricted_us = _pairs(plain, restricted_key, rounds=rounds)
        # Where the time goes, in µs of CPU: the open health check, and the key-authed
        # request with the access log off (an app built without it, same runtime).
        quiet = Driver(create_app(runtime=replace(runtime, settings=no_log)))
        costs: dict[str, list[float]] = {"health": [], "key": [], "key, no access log": []}
        for _ in range(max(3, rounds // 4)):
            costs["health"].append(
                loop.run_until_complete(driver.run(key, iterations, "/api/health"))
            )
            costs["key"].append(loop.run_until_complete(driver.run(key, iterations)))
            costs["key, no access log"].append(loop.run_until_complete(quiet.run(key, iterations)))
        assert driver.statuses == quiet.statuses == {200}, driver.statuses
        profile = _profile(driver, key, iterations)
    finally:
        loop.run_until_complete(runtime.stop())
        loop.close()
        asyncio.set_event_loop(None)

    now = datetime.now(UTC)
    calls = 200_000
    succeeded_ns = min(timeit.repeat(lambda: usage.succeeded(1, now), number=calls, repeat=5))
    succeeded_ns = succeeded_ns / calls * 1e9
    cidrs = '["127.0.0.0/8"]'
    check_ns = min(
        timeit.repeat(lambda: address_allowed(cidrs, "127.0.0.1"), number=calls, repeat=5)
    )
    check_ns = check_ns / calls * 1e9
    request_us = statistics.median(with_counts)
    return {
        "iterations_per_round": iterations,
        "rounds": rounds,
        "request_us": round(request_us, 2),
        "cpu_us": {name: round(statistics.median(values), 1) for name, values in costs.items()},
        "usage_counting": {
            "with_us": round(statistics.median(with_counts), 2),
            "without_us": round(statistics.median(without_counts), 2),
            # throughput with counting / throughput without
            "ratio": _throughput_ratio(with_counts, without_counts),
            "succeeded_call_ns": round(succeeded_ns, 1),
            "share_of_request": round(succeeded_ns / 1000 / request_us, 4),
        },
        "restrictions": {
            "unrestricted_us": round(statistics.median(unrestricted_us), 2),
            "restricted_us": round(statistics.median(restricted_us), 2),
            # throughput restricted / unrestricted
            "ratio": _throughput_ratio(restricted_us, unrestricted_us),
            "address_check_ns": round(check_ns, 1),
        },
        "profile": profile,
    }
