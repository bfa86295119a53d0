"""The embedded server as ``paradarum.server`` sets it up: the Granian it builds from
the settings (each in a fresh process, since building one configures logging and
serving sets environment variables), Granian's log lines in the service's format,
and workers that get their graceful stop when the server process dies. What a
running server does with these limits is tested end to end in
tests/web/test_server_limits.py."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from paradarum import server
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
PR_GET_PDEATHSIG = 2  # linux/prctl.h

# Runs serve() in a fresh process with Granian's Server doing everything but serve:
# the real constructor checks every argument, then what it was told is printed.
BUILD = textwrap.dedent(
    """
    import json, os, sys
    from granian.server import Server
    import granian.server
    from paradarum import server
    from paradarum.config import Settings

    built = []

    class Recorded(Server):
        def serve(self, *args, **kwargs):
            built.append(self)

    granian.server.Server = Recorded
    settings = Settings(**json.loads(sys.argv[1]))
    started = []
    server.serve(settings, host="127.0.0.1", port=8123, workers=3,
                 on_started=(lambda: started.append(1)) if sys.argv[2] == "hook" else None)
    (granian,) = built
    for hook in granian.hooks_startup:
        hook()
    h1 = granian.http1_settings
    print(json.dumps({
        "target": granian.target,
        "factory": granian.factory,
        "address": granian.bind_addr,
        "port": granian.bind_port,
        "interface": granian.interface.value,
        "http": granian.http.value,
        "websockets": granian.websockets,
        "workers": granian.workers,
        "backpressure": granian.backpressure,
        "header_read_timeout": h1.header_read_timeout,
        "max_buffer_size": h1.max_buffer_size,
        "keep_alive": h1.keep_alive,
        "log_level": granian.log_level.value,
        "log_access": granian.log_access,
        "log_config": granian.log_config,
        "kill_timeout": granian.workers_kill_timeout,
        "started": started,
        "environment": {
            name: os.environ.get(name)
            for name in ("PARADARUM_DATA_DIR", "PARADARUM_DATABASE_URL", "RUST_BACKTRACE")
        },
    }))
    """
)


def build(settings: dict[str, object], *, hook: bool = False, cwd: Path) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    environment["RUST_BACKTRACE"] = "full"
    environment["PYTHONPATH"] = str(ROOT)
    finished = subprocess.run(
        [sys.executable, "-c", BUILD, json.dumps(settings), "hook" if hook else "-"],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_granian_is_built_from_the_settings(tmp_path):
    built = build(
        {
            "data_dir": "relative/data",
            "header_timeout_seconds": 2.5,
            "max_connections": 77,
            "log_level": "warning",
        },
        hook=True,
        cwd=tmp_path,
    )
    # The app is built in each worker, from the environment.
    assert (built["target"], built["factory"]) == (server.APP_FACTORY, True)
    assert (built["address"], built["port"], built["workers"]) == ("127.0.0.1", 8123, 3)
    # ASGI over HTTP/1.1 only: in auto mode an idle connection is never timed out.
    assert (built["interface"], built["http"], built["websockets"]) == ("asgi", "1", False)
    assert built["backpressure"] == 77  # PARADARUM_MAX_CONNECTIONS, per worker
    assert built["header_read_timeout"] == 2500  # milliseconds
    assert built["max_buffer_size"] == server.HEADER_BUFFER_BYTES == 64 * 1024
    assert built["keep_alive"] is True
    assert built["kill_timeout"] == server.STOP_TIMEOUT_SECONDS
    assert built["log_level"] == "warning"
    assert built["log_access"] is False  # the app writes its own, without query strings
    loggers = built["log_config"]["loggers"]  # as Granian applied it
    assert built["log_config"]["formatters"] == server.log_config("WARNING")["formatters"]
    assert loggers["_granian"]["handlers"] == ["stdout"]
    assert loggers["_granian"]["level"] == 30  # logging.WARNING
    assert loggers["granian.access"]["handlers"] == []
    assert built["started"] == [1]  # on_started runs as Granian starts
    # Workers find the data where the server was started, whatever their directory.
    assert built["environment"]["PARADARUM_DATA_DIR"] == str(tmp_path / "relative" / "data")
    assert built["environment"]["PARADARUM_DATABASE_URL"] is None
    assert built["environment"]["RUST_BACKTRACE"] is None  # a crash is one line


def test_the_defaults_are_a_15_second_header_deadline_and_1024_connections(tmp_path):
    built = build({}, cwd=tmp_path)
    assert built["header_read_timeout"] == 15_000
    assert built["backpressure"] == 1024
    assert built["log_level"] == "info"
    assert built["started"] == []


def test_a_database_url_reaches_the_workers_through_the_environment(tmp_path):
    url = "postgresql://paradarum@127.0.0.1:5432/paradarum"
    built = build({"database_url": url, "data_dir": str(tmp_path / "d")}, cwd=tmp_path)
    assert built["environment"]["PARADARUM_DATABASE_URL"] == url
    assert built["environment"]["PARADARUM_DATA_DIR"] == str(tmp_path / "d")


def test_granian_s_own_lines_are_json_at_the_level_asked_and_its_access_log_is_off(tmp_path):
    script = textwrap.dedent(
        """
        import logging, logging.config, sys
        from paradarum import server
        logging.config.dictConfig(server.log_config(sys.argv[1]))
        granian = logging.getLogger("_granian")
        granian.info("Listening at: http://127.0.0.1:8123")
        granian.warning("Worker 1 died, respawning")
        logging.getLogger("granian.access").info("GET /api/account?api_key=secret 200")
        """
    )
    lines = {}
    for level in ("info", "WARNING"):
        finished = subprocess.run(
            [sys.executable, "-c", script, level],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert finished.returncode == 0, finished.stderr
        assert finished.stderr == ""
        lines[level] = [json.loads(line) for line in finished.stdout.splitlines()]
    assert [(e["logger"], e["level"], e["message"]) for e in lines["info"]] == [
        ("_granian", "info", "Listening at: http://127.0.0.1:8123"),
        ("_granian", "warning", "Worker 1 died, respawning"),
    ]
    assert [e["message"] for e in lines["WARNING"]] == ["Worker 1 died, respawning"]


def _death_signal() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    value = ctypes.c_int(-1)
    assert libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) == 0
    return value.value


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_outside_a_worker_process_nothing_is_asked():
    before = _death_signal()
    server.die_with_parent()
    assert _death_signal() == before == 0


def _worker(marker: str, gate: str) -> None:
    """A worker as Granian's are (started by multiprocessing): it records the signal
    that stops it. With a gate, it asks only once the gate opens."""
    signal.signal(signal.SIGTERM, lambda *_: (Path(marker).write_text("SIGTERM"), os._exit(0)))
    if gate:
        with open(gate) as opened:  # a FIFO: blocks until the test opens it
            opened.read()
    server.die_with_parent()
    Path(marker + ".asked").write_text(str(_death_signal()))
    while True:
        signal.pause()


# The process Granian's workers belong to: starts one worker and waits.
SERVER = textwrap.dedent(
    """
    import multiprocessing, sys
    from tests.unit.test_server import _worker
    worker = multiprocessing.get_context("spawn").Process(
        target=_worker, args=(sys.argv[1], sys.argv[2]))
    worker.start()
    print(worker.pid, flush=True)
    worker.join()
    """
)


def _start_server(marker: Path, gate: str = "") -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(marker), gate],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_worker_gets_its_graceful_stop_when_the_server_is_killed(tmp_path):
    marker = tmp_path / "worker"
    process, worker = _start_server(marker)
    try:
        wait_until(lambda: Path(f"{marker}.asked").exists(), timeout=30)
        assert int(Path(f"{marker}.asked").read_text()) == signal.SIGTERM
        assert not marker.exists()  # still serving while the server lives
        process.kill()  # kill -9: the server cannot stop anything itself
        process.wait(timeout=10)
        wait_until(lambda: _gone(worker), timeout=10)
        assert marker.read_text() == "SIGTERM"
    finally:
        if not _gone(worker):
            os.kill(worker, signal.SIGKILL)
        process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_worker_whose_server_died_before_it_asked_stops_itself(tmp_path):
    marker = tmp_path / "worker"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    process, worker = _start_server(marker, str(gate))
    try:
        process.kill()
        process.wait(timeout=10)
        started = time.monotonic()
        with open(gate, "w"):  # let it ask now, with nobody left to ask about
            pass
        wait_until(lambda: _gone(worker), timeout=10)
        assert marker.read_text() == "SIGTERM"
        assert time.monotonic() - started < 10
    finally:
        if not _gone(worker):
            os.kill(worker, signal.SIGKILL)
        assert process.stdout is not None
        process.stdout.close()
