"""Load with ``wrk`` (pinned to CPU 1), scenarios measured in interleaved rounds,
and ratios taken as the median of per-round pairs: on a shared machine a burst of
load from elsewhere then skews one pair, not the comparison."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.servers import LOAD_CPU, pinned
from tests.support import ServerProcess, rss_kib, worker_pids

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required: apt-get install wrk")
    return found


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers and socket errors
    peak_rss_mib: float
    # CPU time the server's processes used per request (µs): unlike req/s, hardly
    # moved by other work taking turns on the same core.
    cpu_us: float


class PeakRss:
    """The largest RSS of a server's processes (its worker, for Granian and
    gunicorn) sampled every 50 ms while a load runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in [self.pid, *worker_pids(self.pid)]:
            with contextlib.suppress(OSError, AssertionError):
                self.peak_kib = max(self.peak_kib, rss_kib(pid))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server: its process and its workers."""
    ticks = 0
    for each in [pid, *worker_pids(pid)]:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{each}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def wrk(
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: int,
    warmup: int,
    pid: int,
) -> Load:
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]

    def call(duration: int) -> str:
        argv = [*pinned(LOAD_CPU), wrk_path(), "-t", "1", "-c", str(connections)]
        argv += ["-d", f"{duration}s", "--timeout", "5s", "--latency", *header_args, url]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    if warmup > 0:
        call(warmup)
    cpu_before = cpu_seconds(pid)
    with PeakRss(pid) as rss:
        out = call(seconds)
    cpu = cpu_seconds(pid) - cpu_before

    def find(pattern: str) -> str:
        found = re.search(pattern, out)
        if found is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        return found.group(1)

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = int(find(r"(\d+) requests in"))
    return Load(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"\s50%\s+(\S+)")),
        p99_ms=_ms(find(r"\s99%\s+(\S+)")),
        requests=requests,
        errors=(int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(g) for g in socket.groups()) if socket else 0),
        peak_rss_mib=round(rss.peak_kib / 1024, 1),
        cpu_us=round(cpu / max(requests, 1) * 1e6, 1),
    )


@dataclass
class Scenario:
    name: str
    server: ServerProcess
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 32
    runs: list[Load] = field(default_factory=list)

    def measure(self, *, seconds: int, warmup: int) -> Load:
        load = wrk(
            self.server.base_url + self.path,
            self.headers,
            connections=self.connections,
            seconds=seconds,
            warmup=warmup,
            pid=self.server.process.pid,
        )
        self.runs.append(load)
        print(
            f"   {self.name:<34} {load.rps:>8.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
            f"p99 {load.p99_ms:6.2f} ms  cpu {load.cpu_us:5.1f} µs/req  errors {load.errors}",
            flush=True,
        )
        return load

    @property
    def rps(self) -> float:
        return statistics.median(run.rps for run in self.runs)

    @property
    def cpu_us(self) -> float:
        return statistics.median(run.cpu_us for run in self.runs)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "connections": self.connections,
            "rps_median": round(self.rps, 1),
            "rps_rounds": [round(run.rps, 1) for run in self.runs],
            "cpu_us_per_request": round(self.cpu_us, 1),
            "cpu_us_rounds": [run.cpu_us for run in self.runs],
            "p50_ms": round(statistics.median(run.p50_ms for run in self.runs), 2),
            "p99_ms": round(statistics.median(run.p99_ms for run in self.runs), 2),
            "requests": sum(run.requests for run in self.runs),
            "errors": sum(run.errors for run in self.runs),
            "peak_rss_mib": max(run.peak_rss_mib for run in self.runs),
        }


def interleave(scenarios: list[Scenario], *, rounds: int, seconds: int, warmup: int) -> None:
    """Every scenario once per round; every other round in reverse order, so that
    a slow drift of the machine's load favours neither side of a pair."""
    for number in range(rounds):
        print(f"  round {number + 1}/{rounds}", flush=True)
        order = scenarios if number % 2 == 0 else scenarios[::-1]
        for scenario in order:
            scenario.measure(seconds=seconds, warmup=warmup)


def ratio(a: Scenario, b: Scenario) -> float:
    """Throughput of a over b: the median of the per-round ratios."""
    pairs = [x.rps / y.rps for x, y in zip(a.runs, b.runs, strict=True) if y.rps]
    return round(statistics.median(pairs), 3) if pairs else 0.0


def cpu_ratio(a: Scenario, b: Scenario) -> float:
    """The same from CPU time per request (b's over a's): the throughput ratio
    each would have on a core of its own, when both are CPU-bound."""
    pairs = [y.cpu_us / x.cpu_us for x, y in zip(a.runs, b.runs, strict=True) if x.cpu_us]
    return round(statistics.median(pairs), 3) if pairs else 0.0
