"""The servers a run compares, all started through the test harness
(``tests/support.py``) and pinned to CPU 0: Paradarum, the floor and the peer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ServerProcess, free_port, start_process, start_server

BENCH = Path(__file__).resolve().parent
FLOOR_VENV = BENCH / ".floor-venv"
FLOOR_PACKAGES = ["uvicorn", "httptools", "uvloop"]
PEER_DIR = BENCH / "peer"
PEER_VENV = BENCH / ".peer-venv"
PEER_PACKAGES = ["django", "djangorestframework", "djangorestframework-api-key", "gunicorn"]

PINNING = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
SERVER_CPU, LOAD_CPU = 0, 1


def pinned(cpu: int) -> list[str]:
    """The command prefix that keeps a process (and its children) on one CPU."""
    return ["taskset", "-c", str(cpu)] if PINNING else []


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env.update(extra)
    return env


def ensure_venv(venv: Path, packages: list[str]) -> Path:
    """A virtualenv of the bench's own (git-ignored) with ``packages`` from PyPI."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text().split() == packages:
        return python
    print(f"Installing {', '.join(packages)} into {venv.relative_to(BENCH.parent)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    marker.write_text(" ".join(packages) + "\n")
    return python


def start_paradarum(name: str, env: dict[str, str], work: Path) -> ServerProcess:
    """``paradarum serve`` (one Granian worker) on CPU 0."""
    return start_server(env, log_path=work / f"{name}.log", prefix=pinned(SERVER_CPU))


def start_floor(work: Path) -> ServerProcess:
    python = ensure_venv(FLOOR_VENV, FLOOR_PACKAGES)
    port = free_port()
    argv = [
        *pinned(SERVER_CPU),
        str(python),
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH / "floor"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
        "app:app",
    ]
    return start_process(
        argv, env=clean_env(), log_path=work / "floor.log", base_url=f"http://127.0.0.1:{port}"
    )


def start_peer(work: Path) -> tuple[ServerProcess, str]:
    """Django + DRF + djangorestframework-api-key under gunicorn (one sync worker),
    on SQLite, with one key made the documented way. Returns the server and key."""
    python = ensure_venv(PEER_VENV, PEER_PACKAGES)
    env = clean_env(
        PEER_DB=str(work / "peer.sqlite3"),
        DJANGO_SETTINGS_MODULE="peersite.settings",
        PYTHONPATH=str(PEER_DIR),
    )
    run = {"env": env, "check": True, "capture_output": True, "text": True, "cwd": PEER_DIR}
    subprocess.run([str(python), "-m", "django", "migrate", "--noinput"], **run)  # type: ignore[call-overload]
    key = subprocess.run([str(python), "-m", "peersite.make_key"], **run).stdout.strip()  # type: ignore[call-overload]
    port = free_port()
    argv = [
        *pinned(SERVER_CPU),
        str(PEER_VENV / "bin" / "gunicorn"),
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "peersite.wsgi:application",
    ]
    server = start_process(
        argv,
        env=env,
        log_path=work / "peer.log",
        base_url=f"http://127.0.0.1:{port}",
        cwd=PEER_DIR,
    )
    return server, key
