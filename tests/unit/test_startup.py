"""What is checked before a command starts, called directly: settings errors as one
line naming each variable (exit 2), the data directory made private (0700 when
created, 0600 files, a warning for an open one), and the address check (in use:
exit 1; not this machine's: exit 2). The commands' own output is tested end to end
in tests/web/test_server_limits.py."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from paradarum.config import DATABASE_FILE_NAME, SECRET_FILE_NAME
from paradarum.startup import (
    PRIVATE_FILES,
    StartupError,
    base_url,
    check_address,
    load_settings,
    prepare_data_dir,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PARADARUM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def saved_umask() -> Iterator[None]:
    """prepare_data_dir sets the process's umask: put it back for the other tests."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- settings -----------------------------------------------------------------------------


def test_settings_come_from_the_environment_and_the_command_s_flags_win(monkeypatch, tmp_path):
    monkeypatch.setenv("PARADARUM_PORT", "8123")
    monkeypatch.setenv("PARADARUM_WORKERS", "3")
    settings = load_settings({"port": 9000, "data_dir": tmp_path / "d"})
    assert (settings.port, settings.workers, settings.data_dir) == (9000, 3, tmp_path / "d")


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("PARADARUM_PORT", "abc", "PARADARUM_PORT: must be a whole number"),
        ("PARADARUM_SIGNUP_ENABLED", "maybe", "PARADARUM_SIGNUP_ENABLED: must be true or false"),
        ("PARADARUM_DB_POOL_TIMEOUT", "soon", "PARADARUM_DB_POOL_TIMEOUT: must be a number"),
        # A validator's own sentence, without pydantic's "Value error, " in front.
        ("PARADARUM_DATA_DIR", " ", "PARADARUM_DATA_DIR: is empty: give a directory"),
        ("PARADARUM_TRUSTED_PROXIES", "[oops", "PARADARUM_TRUSTED_PROXIES: "),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable_with_exit_status_2(
    monkeypatch, variable, value, said
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(StartupError) as refused:
        load_settings()
    error = refused.value
    assert error.code == 2
    assert error.message == str(error)
    assert error.message.startswith(f"Invalid configuration: {said}")
    assert "\n" not in error.message and "Value error" not in error.message
    assert "https://errors.pydantic.dev" not in error.message


def test_every_bad_setting_is_named_in_the_one_line(monkeypatch):
    monkeypatch.setenv("PARADARUM_PORT", "abc")
    monkeypatch.setenv("PARADARUM_KEY_LIMIT", "0")
    monkeypatch.setenv("PARADARUM_LOG_LEVEL", "loud")
    with pytest.raises(StartupError) as refused:
        load_settings()
    problems = refused.value.message.removeprefix("Invalid configuration: ").split("; ")
    named = sorted(problem.split(":", 1)[0] for problem in problems)
    assert named == ["PARADARUM_KEY_LIMIT", "PARADARUM_LOG_LEVEL", "PARADARUM_PORT"]
    assert "\n" not in refused.value.message


def test_a_rule_across_settings_is_said_as_it_is_without_a_variable_in_front(monkeypatch):
    monkeypatch.setenv("PARADARUM_RATE_LIMIT_BACKEND", "redis")
    with pytest.raises(StartupError) as refused:
        load_settings()
    assert refused.value.message == (
        "Invalid configuration: PARADARUM_RATE_LIMIT_BACKEND=redis needs PARADARUM_REDIS_URL"
    )
    assert refused.value.code == 2


@pytest.mark.parametrize(
    ("variable", "template"),
    [
        ("PARADARUM_DATABASE_URL", "mysql://paradarum:{secret}@db.example/paradarum"),
        ("PARADARUM_REDIS_URL", "http://:{secret}@redis.example:6379/0"),
        ("PARADARUM_SMTP_URL", "smtp-nope://mailer:{secret}@mail.example"),
    ],
)
def test_a_refused_url_is_never_repeated_in_the_error_since_it_may_hold_a_password(
    monkeypatch, variable, template
):
    secret = secrets.token_urlsafe(12)
    monkeypatch.setenv(variable, template.format(secret=secret))
    with pytest.raises(StartupError) as refused:
        load_settings()
    assert variable in refused.value.message
    assert secret not in refused.value.message
    assert ".example" not in refused.value.message


# -- the data directory -----------------------------------------------------------------


def test_a_missing_data_directory_is_created_private_and_new_files_are_private(tmp_path):
    data = tmp_path / "nested" / "data"
    prepare_data_dir(load_settings({"data_dir": data}))
    assert data.is_dir() and mode(data) == 0o700
    assert list(data.iterdir()) == []  # the write check leaves nothing behind
    # From here on, whatever the process creates is its owner's alone (umask 077).
    (data / "created-later").write_bytes(b"x")
    assert mode(data / "created-later") == 0o600
    (data / "a-directory").mkdir()
    assert mode(data / "a-directory") == 0o700


def test_private_files_an_older_version_left_readable_become_0600_and_others_stay(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    assert {DATABASE_FILE_NAME, SECRET_FILE_NAME} <= set(PRIVATE_FILES)
    for name in (*PRIVATE_FILES, "notes.txt"):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    (data / f"{DATABASE_FILE_NAME}-wal").chmod(0o666)
    prepare_data_dir(load_settings({"data_dir": data}))
    for name in PRIVATE_FILES:
        assert mode(data / name) == 0o600, name
    assert mode(data / "notes.txt") == 0o644  # not ours to change


def test_a_data_directory_others_can_read_is_warned_about_once_and_kept(tmp_path, caplog):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="paradarum"):
        prepare_data_dir(load_settings({"data_dir": data}))
    warnings = [r for r in caplog.records if r.name == "paradarum" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert str(data) in text and f"chmod 700 {data}" in text
    assert mode(data) == 0o755  # the operator's directory: said, not changed


def test_a_private_data_directory_is_not_warned_about(tmp_path, caplog):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with caplog.at_level(logging.DEBUG, logger="paradarum"):
        prepare_data_dir(load_settings({"data_dir": data}))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_data_directory_that_is_a_file_is_refused_naming_the_setting(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("not a directory")
    with pytest.raises(StartupError) as refused:
        prepare_data_dir(load_settings({"data_dir": a_file}))
    assert refused.value.code == 2
    assert refused.value.message.startswith(f"PARADARUM_DATA_DIR: {a_file} is a file")
    assert a_file.read_text() == "not a directory"


def test_a_data_directory_that_cannot_be_written_is_refused_naming_the_setting(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/paradarum-data")  # not even root writes there
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "data"
    with pytest.raises(StartupError) as refused:
        prepare_data_dir(load_settings({"data_dir": target}))
    assert refused.value.code == 2
    message = refused.value.message
    assert message.startswith(f"PARADARUM_DATA_DIR: {target} cannot be written to (")
    assert "\n" not in message


def test_postgresql_with_a_configured_secret_writes_nothing_to_disk(tmp_path):
    data = tmp_path / "data"
    settings = load_settings(
        {
            "data_dir": data,
            "database_url": "postgresql://paradarum@127.0.0.1:5432/paradarum",
            "jwt_secret": secrets.token_urlsafe(48),
        }
    )
    prepare_data_dir(settings)
    assert not data.exists()
    # Still, anything the process writes (a temporary file, a dump) is private.
    (tmp_path / "written").write_bytes(b"x")
    assert mode(tmp_path / "written") == 0o600


def test_postgresql_without_a_secret_still_gets_a_private_data_directory_for_it(tmp_path):
    data = tmp_path / "data"
    settings = load_settings(
        {"data_dir": data, "database_url": "postgresql://paradarum@127.0.0.1:5432/paradarum"}
    )
    prepare_data_dir(settings)
    assert data.is_dir() and mode(data) == 0o700


# -- the address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("0.0.0.0", 80, "http://0.0.0.0:80"),
        ("::1", 8000, "http://[::1]:8000"),
        ("2001:db8::7", 443, "http://[2001:db8::7]:443"),
    ],
)
def test_base_url_brackets_ipv6_addresses(host, port, url):
    assert base_url(host, port) == url


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_port_zero_is_a_free_port_chosen_and_left_free_for_the_server(host):
    port = check_address(host, 0)
    assert 0 < port < 65536
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.bind((host, port))  # the probe let go of it
        server.listen()
    assert check_address(host, port) == port


def test_a_port_in_use_is_refused_with_exit_status_1():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StartupError) as refused:
            check_address("127.0.0.1", port)
    assert refused.value.code == 1
    assert refused.value.message.startswith(f"Port {port} on 127.0.0.1 is in use")
    assert "PARADARUM_PORT" in refused.value.message


def test_a_server_that_shares_its_port_is_still_refused():
    """Granian listens with SO_REUSEPORT: a second server asking the same would get
    half of the connections. The check does not ask, so it is told."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StartupError) as refused:
            check_address("127.0.0.1", port)
    assert refused.value.code == 1


def _time_wait_on(port: int) -> bool:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "06":
            return True
    return False


def test_connections_lingering_after_a_server_died_do_not_block_a_restart():
    """A server that closed its connections first leaves them in TIME_WAIT for up to
    a minute; the check takes the port all the same. (The kernel allows it when the
    server's listener asked for SO_REUSEADDR too, as Granian's does.)"""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server's side closes first: it is the one that lingers
        with contextlib.suppress(OSError):
            client.recv(1)  # its end of file
        client.close()
    if not _time_wait_on(port):
        pytest.fail("no connection lingers in TIME_WAIT: nothing would be tested")
    assert check_address("127.0.0.1", port) == port


def test_an_address_that_is_not_this_machine_s_is_a_setting_error():
    # 192.0.2.0/24 is for documentation: no machine has it.
    with pytest.raises(StartupError) as refused:
        check_address("192.0.2.1", 0)
    assert refused.value.code == 2
    assert refused.value.message.startswith("PARADARUM_HOST: 192.0.2.1 is not an address")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may listen on any port")
def test_a_privileged_port_is_a_setting_error_for_an_ordinary_user():
    with pytest.raises(StartupError) as refused:
        check_address("127.0.0.1", 80)
    assert refused.value.code == 2
    assert refused.value.message.startswith("PARADARUM_PORT: port 80 needs privileges")


@pytest.mark.parametrize("host", ["300.1.1.1", "no-such-host.invalid", "::ffff:999.0.0.1"])
def test_a_host_that_is_no_address_nor_a_known_name_is_a_setting_error(host):
    with pytest.raises(StartupError) as refused:
        check_address(host, 0)
    assert refused.value.code == 2
    assert refused.value.message.startswith(f"PARADARUM_HOST: {host} is neither an IP address")
    assert "\n" not in refused.value.message
