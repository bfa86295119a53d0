"""What only a real ``paradarum serve`` can show: header limits and the header-read
deadline of the embedded server, the address check, private data files, a full
disk, and one-line configuration errors."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    IN_CI,
    PASSWORD,
    bearer,
    free_port,
    login,
    signup,
    start_server,
    wait_until,
)

pytestmark = pytest.mark.slow


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PARADARUM_DATA_DIR": str(tmp_path / "data"),
        "PARADARUM_ACCESS_LOG": "false",
        **extra,
    }


def paradarum(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    return subprocess.run(
        [sys.executable, "-m", "paradarum", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_64_kib_header_is_431_at_once_and_others_are_served_meanwhile(tmp_path):
    server = start_server(env_for(tmp_path), log_path=tmp_path / "server.log")
    try:
        host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
        started = time.monotonic()
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(
                b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
            )
            answer = sock.recv(200)
        assert answer.startswith(b"HTTP/1.1 431"), answer
        assert time.monotonic() - started < 1
        # Many header lines of 1 KiB, 80 KiB in all: 431 as well, however small each is.
        many = b"".join(b"X-H%d: %s\r\n" % (n, b"b" * 1000) for n in range(80))
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
            assert sock.recv(200).startswith(b"HTTP/1.1 431")
        assert httpx.get(server.base_url + "/api/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_slow_header_connections_are_closed_at_the_deadline_and_others_are_served(tmp_path):
    """Slowloris: 50 clients trickle a header byte at a time. Each is closed when the
    header-read deadline passes, however slowly bytes keep coming, and a fresh client
    is served meanwhile."""
    server = start_server(
        env_for(tmp_path, PARADARUM_HEADER_TIMEOUT_SECONDS="2"), log_path=tmp_path / "server.log"
    )
    port = int(server.base_url.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(sock)
        started = time.monotonic()
        assert httpx.get(server.base_url + "/api/health", timeout=5).status_code == 200
        closed: set[int] = set()
        while len(closed) < len(slow) and time.monotonic() - started < 10:
            for index, sock in enumerate(slow):
                if index in closed:
                    continue
                try:
                    sock.sendall(b"a")
                    sock.settimeout(0.01)
                    if sock.recv(1) == b"":
                        closed.add(index)
                except (TimeoutError, BlockingIOError):
                    pass
                except OSError:
                    closed.add(index)
            # Until one of the others is closed (readable: its end of file), or it is
            # time for the next byte.
            select.select([s for i, s in enumerate(slow) if i not in closed], [], [], 0.2)
        elapsed = time.monotonic() - started
        assert len(closed) == 50, f"{len(closed)} of 50 slow connections closed"
        assert elapsed < 6, elapsed  # the deadline (2 s), not whenever the bytes stop
        assert httpx.get(server.base_url + "/api/health", timeout=5).status_code == 200
    finally:
        for sock in slow:
            sock.close()
        server.stop()


def test_a_port_in_use_is_one_line_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        finished = paradarum("serve", "--port", str(port), env=env_for(tmp_path))
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert lines == [lines[0]] and f"Port {port}" in lines[0] and "in use" in lines[0]
    assert "started" not in finished.stdout  # nothing started, nothing migrated
    assert not (tmp_path / "data" / "paradarum.db").exists()


def _connected_clients(base_url: str, count: int) -> list[httpx.Client]:
    """``count`` clients, each holding a keep-alive connection after one answer."""
    clients = []
    for _ in range(count):
        client = httpx.Client(base_url=base_url, timeout=10)
        assert client.get("/api/health").status_code == 200
        clients.append(client)
    return clients


def _connections_on(port: int) -> set[str]:
    """The TCP states of this machine's sockets whose local port is ``port`` (IPv4)."""
    states = {
        "01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
        "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
    }  # fmt: skip
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found.add(states.get(fields[3], fields[3]))
    return found


def test_a_restart_right_after_kill_minus_nine_with_clients_connected_starts_at_once(tmp_path):
    port = free_port()
    first = start_server(env_for(tmp_path), port=port, log_path=tmp_path / "first.log")
    clients = _connected_clients(first.base_url, 5)
    try:
        first.kill()  # SIGKILL: the kernel closes the server's side of each connection
        # Every worker is gone once nothing listens or is established on the port.
        wait_until(lambda: not _connections_on(port) & {"LISTEN", "ESTABLISHED"})
        for client in clients:  # the clients close theirs: the server's side is TIME_WAIT
            client.close()
        assert "TIME_WAIT" in _connections_on(port), "nothing lingers: nothing is tested"
        # Without SO_REUSEADDR the start-up check would refuse the port for a minute.
        second = start_server(env_for(tmp_path), port=port, log_path=tmp_path / "second.log")
    finally:
        for client in clients:
            client.close()
    try:
        assert httpx.get(second.base_url + "/api/health", timeout=5).status_code == 200
        # A second live server on that port is still refused, in one line.
        refused = paradarum("serve", "--port", str(port), env=env_for(tmp_path / "other"))
        assert refused.returncode == 1
        assert f"Port {port}" in refused.stderr and "in use" in refused.stderr
        assert httpx.get(second.base_url + "/api/health", timeout=5).status_code == 200
    finally:
        second.stop()


def test_a_kill_minus_nine_of_the_server_process_alone_takes_its_workers_with_it(tmp_path):
    """Only the process `paradarum serve` started as (what `kill -9 PID`, or the
    out-of-memory killer, hits): its workers stop serving, let go of the port, and a
    restart right away starts, with clients connected meanwhile."""
    port = free_port()
    first = start_server(env_for(tmp_path), port=port, workers=2, log_path=tmp_path / "first.log")
    clients = _connected_clients(first.base_url, 5)
    try:
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=15)
        # Orphaned workers would go on listening, and refuse every restart for good.
        wait_until(lambda: "LISTEN" not in _connections_on(port), timeout=20)
        for client in clients:
            client.close()
        second = start_server(env_for(tmp_path), port=port, log_path=tmp_path / "second.log")
    finally:
        for client in clients:
            client.close()
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the first
            os.killpg(first.process.pid, signal.SIGKILL)
    try:
        assert httpx.get(second.base_url + "/api/health", timeout=5).status_code == 200
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PARADARUM_DATABASE_URL", "bogus", "PARADARUM_DATABASE_URL"),
        ("PARADARUM_REDIS_URL", "bogus", "PARADARUM_REDIS_URL"),
        ("PARADARUM_LOG_LEVEL", "LOUD", "PARADARUM_LOG_LEVEL"),
        ("PARADARUM_KEY_LIMIT", "0", "PARADARUM_KEY_LIMIT"),
        ("PARADARUM_DATA_DIR", "", "PARADARUM_DATA_DIR"),
        ("PARADARUM_TRUSTED_PROXIES", "not-a-network", "PARADARUM_TRUSTED_PROXIES"),
        ("PARADARUM_SMTP_URL", "bogus", "PARADARUM_SMTP_URL"),
    ],
)
@pytest.mark.parametrize(
    "command", [("serve",), ("db", "upgrade"), ("accounts", "create", "a@b.co")]
)
def test_a_configuration_error_is_one_line_naming_the_setting_and_exit_2(
    tmp_path, variable, value, named, command
):
    env = {**env_for(tmp_path), variable: value, "PARADARUM_NEW_PASSWORD": PASSWORD}
    finished = paradarum(*command, env=env)
    assert finished.returncode == 2, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert named in lines[0] and "Traceback" not in finished.stderr


def test_an_unwritable_data_directory_is_one_line(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/paradarum-data"  # not even root writes there
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "data")
    finished = paradarum("serve", env={**env_for(tmp_path), "PARADARUM_DATA_DIR": target})
    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and "PARADARUM_DATA_DIR" in finished.stderr


def modes(directory: Path) -> dict[str, int]:
    return {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in directory.iterdir()
        if path.name.startswith(("paradarum.db", "jwt-secret"))
    }


def test_data_files_are_private_even_in_an_open_directory_and_old_modes_are_fixed(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    server = start_server(env_for(tmp_path), log_path=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url) as http:
            signup(http, "modes@example.com")
    finally:
        server.stop()
    created = modes(data)
    assert {"paradarum.db", "jwt-secret"} <= set(created)
    assert all(mode == 0o600 for mode in created.values()), created
    assert "can be read by other users" in server.output()
    # Files left readable by an older version are made private at the next start.
    for name in created:
        (data / name).chmod(0o644)
    server = start_server(env_for(tmp_path), log_path=tmp_path / "server2.log")
    server.stop()
    assert all(mode == 0o600 for mode in modes(data).values()), modes(data)


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    """A real file system that fills up: a tmpfs of ``size`` (needs root)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a small file system here: {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def test_a_full_disk_fails_writes_and_readiness_with_the_cause_logged_then_recovers(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        env = {**env_for(tmp_path), "PARADARUM_DATA_DIR": str(disk / "data")}
        server = start_server(env, log_path=tmp_path / "server.log")
        try:
            base = server.base_url
            with httpx.Client(base_url=base, timeout=10) as http:
                signup(http, "full@example.com")
                token = login(http, "full@example.com")
                assert http.get("/api/health/ready").status_code == 200
                filler = fill(disk)
                statuses = set()
                for n in range(40):  # until SQLite's spare pages are gone too
                    created = http.post(
                        "/api/account/apikeys", json={"name": f"k{n}"}, headers=bearer(token)
                    )
                    statuses.add(created.status_code)
                    if created.status_code == 503:
                        break
                assert created.status_code == 503, statuses
                assert "Traceback" not in created.text
                ready = http.get("/api/health/ready")
                assert ready.status_code == 503
                assert "disk is full" in server.output()
                filler.unlink()
                created = http.post(
                    "/api/account/apikeys", json={"name": "after"}, headers=bearer(token)
                )
                assert created.status_code in (201, 400), created.text  # 400: at the key limit
                assert http.get("/api/health/ready").status_code == 200
        finally:
            server.stop()


def test_a_first_start_on_a_full_disk_is_one_clear_line(tmp_path):
    with small_disk(tmp_path / "disk", size="1m") as disk:
        fill(disk)
        finished = paradarum(
            "serve",
            "--port",
            str(free_port()),
            env={**env_for(tmp_path), "PARADARUM_DATA_DIR": str(disk / "data")},
        )
    assert finished.returncode == 1
    assert finished.stderr.count("\n") == 1, finished.stderr
    assert "full" in finished.stderr.lower() and "Traceback" not in finished.stderr


def _slow_request(port: int, source: str) -> socket.socket:
    """A request from ``source`` whose body never finishes: it holds its slot in the
    app until the connection closes."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"POST /api/auth/login HTTP/1.1\r\nHost: paradarum\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    sock.setblocking(False)
    return sock


def _status_line(sock: socket.socket) -> str | None:
    try:
        data = sock.recv(64)
    except BlockingIOError:
        return None
    return data.split(b"\r\n", 1)[0].decode() if data else "closed"


def test_one_client_holding_many_slow_requests_leaves_room_for_others(tmp_path):
    """A client's share of the worker's slots: past it that client gets 429 at once,
    and a fresh client (another loopback address) is served."""
    env = env_for(
        tmp_path,
        PARADARUM_MAX_REQUESTS_IN_FLIGHT="10",
        PARADARUM_MAX_REQUESTS_PER_CLIENT="4",
    )
    server = start_server(env, log_path=tmp_path / "server.log")
    port = int(server.base_url.rsplit(":", 1)[1])
    hog = [_slow_request(port, "127.0.0.2") for _ in range(15)]
    try:
        answers: dict[int, str] = {}
        deadline = time.monotonic() + 20
        while len(answers) < 11 and time.monotonic() < deadline:
            for index, sock in enumerate(hog):
                if index not in answers and (line := _status_line(sock)) is not None:
                    answers[index] = line
            time.sleep(0.05)
        # Four hold their slots; every other request of that client is refused at once.
        assert len(answers) == 11, answers
        assert all(" 429 " in line for line in answers.values()), answers
        # Six slots are left for everyone else.
        fresh = httpx.Client(
            base_url=server.base_url, transport=httpx.HTTPTransport(local_address="127.0.0.3")
        )
        with fresh:
            for _ in range(3):
                assert fresh.get("/api/health", timeout=10).status_code == 200
        assert all(_status_line(hog[i]) is None for i in set(range(15)) - set(answers))
    finally:
        for sock in hog:
            sock.close()
        server.stop()


@pytest.mark.parametrize(
    ("args", "extra", "named", "said"),
    [
        (("--port", "70000"), {}, "PARADARUM_PORT", "less than or equal to 65535"),
        (("--workers", "0"), {}, "PARADARUM_WORKERS", "greater than or equal to 1"),
        ((), {"PARADARUM_PORT": "abc"}, "PARADARUM_PORT", "must be a whole number"),
        ((), {"PARADARUM_SIGNUP_ENABLED": "maybe"}, "PARADARUM_SIGNUP_ENABLED", "true or false"),
    ],
)
def test_a_bad_flag_or_setting_of_serve_is_one_line(tmp_path, args, extra, named, said):
    finished = paradarum("serve", *args, env={**env_for(tmp_path), **extra})
    assert finished.returncode == 2, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert named in lines[0] and said in lines[0]
    assert "Usage:" not in finished.stderr and "Traceback" not in finished.stderr


def test_a_data_directory_that_is_a_file_says_so_in_one_line(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("not a directory")
    finished = paradarum("serve", env=env_for(tmp_path))
    assert finished.returncode == 2
    assert finished.stderr.strip() == (
        f"Error: PARADARUM_DATA_DIR: {a_file} is a file, not a directory; give a directory "
        "(it is created if missing), such as ./data."
    )


def test_db_upgrade_says_what_it_did(tmp_path):
    database = (tmp_path / "data" / "paradarum.db").resolve()
    first = paradarum("db", "upgrade", env=env_for(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"Created the SQLite database {database} (schema ")
    again = paradarum("db", "upgrade", env=env_for(tmp_path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"The SQLite database {database} is up to date (schema ")
    assert again.stdout.strip().endswith("nothing to do.")


def test_serve_says_where_it_runs_in_one_plain_line_with_the_real_port(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "paradarum", "serve", "--port", "0"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")},
            **env_for(tmp_path),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline().strip()
        prefix, _, rest = line.partition("http://127.0.0.1:")
        assert prefix == "Paradarum is running at ", line
        port, _, tail = rest.partition(" ")
        assert tail == "— Ctrl-C to stop" and port.isdigit() and port != "0"
        deadline = time.monotonic() + 30
        while True:  # the address it named answers
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success:
                    break
            assert time.monotonic() < deadline, "the server never answered"
    finally:
        process.terminate()
        process.wait(timeout=60)
        assert process.stderr is not None
        process.stderr.close()
