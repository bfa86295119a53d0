"""The embedded HTTP server: Granian, with the limits a public API needs.

Granian parses HTTP in Rust (hyper) and hands each request to the ASGI app, which
costs far less per request than a Python HTTP layer (docs/performance.md). What
it is told here, and why:

* **HTTP/1.1 only.** In auto mode (HTTP/1 or 2) a client that connects and sends
  nothing is never timed out; with HTTP/1 only, the header-read deadline starts at
  accept. (TLS and HTTP/2 belong to the proxy in front.)
* **Header-read deadline** (``PARADARUM_HEADER_TIMEOUT_SECONDS``, default 15,
  at most 60): from the moment a connection is accepted (or a keep-alive
  connection finished its last answer) to the end of the request's headers, however
  slowly bytes keep arriving; then the connection is closed. Slowloris clients
  are shed within that time. It is also the idle keep-alive timeout.
* **Header size**: the server buffers at most :data:`HEADER_BUFFER_BYTES` of headers
  and 100 lines per request (more is a ``431`` before any Python runs, so a huge
  header costs neither memory nor time); ``web/edge.py`` then holds them to exactly
  64 KiB in all and 16 KiB per line (``431`` too).
* **Connections per worker** (``PARADARUM_MAX_CONNECTIONS``, default 1024): more wait
  in the kernel's listen backlog. Requests in flight per worker are capped by
  the app (``PARADARUM_MAX_REQUESTS_IN_FLIGHT``): beyond it, 503 at once and one
  log line.
* **uvloop**: each worker's event loop (Granian takes it when it is installed, and it
  is a dependency): the loop's own work is part of every request.
* Graceful stop: on SIGTERM in-flight requests finish (at most 30 s), then each
  worker's lifespan stops the runtime.
* **Workers die with the server.** A ``kill -9`` of ``paradarum serve`` (or an
  out-of-memory kill) would leave its workers serving with nobody to stop them, and
  holding the port, so that a restart is refused for good: on Linux each worker
  asks for SIGTERM (its graceful stop) when the process that started it dies
  (:func:`die_with_parent`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from paradarum.config import Settings

HEADER_BUFFER_BYTES = 64 * 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_TIMEOUT_SECONDS = 30
APP_FACTORY = "paradarum.web.app:create_app_from_env"


def log_config(level: str) -> dict[str, Any]:
    """Granian's own lines in the service's JSON format; its access log off (the
    app writes its own, which never includes the query string)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "paradarum.logs.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            "_granian": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Run the service until stopped (blocks). Worker processes build the app from
    the environment, so every setting reaches them through it. ``on_started`` runs
    once the address is bound, as the workers start."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    os.environ["PARADARUM_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["PARADARUM_DATABASE_URL"] = settings.database_url
    # Rust backtraces are for Granian's developers; a crash is logged as one line.
    os.environ.pop("RUST_BACKTRACE", None)
    granian = Server(
        APP_FACTORY,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        workers=workers,
        backpressure=settings.max_connections,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout_seconds * 1000),
            max_buffer_size=HEADER_BUFFER_BYTES,
            keep_alive=True,
        ),
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=log_config(settings.log_level),
        log_access=False,
        workers_kill_timeout=STOP_TIMEOUT_SECONDS,
    )
    if on_started is not None:
        granian.on_startup(on_started)
    granian.serve()


def die_with_parent() -> None:
    """In a worker process (one that ``multiprocessing`` started, as Granian's are):
    get SIGTERM, the graceful stop, when the server process dies, however it dies.
    Elsewhere (the tests' in-process app, another platform) nothing happens."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not allowed here (a sandbox): the supervisor's cgroup still cleans up
    # The server may have died before the request was made: then nobody will ask.
    if os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGTERM)
