"""The operator commands: db upgrade, accounts create, serve's refusals."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from paradarum.cli import build_app
from paradarum.config import Settings
from paradarum.runtime import build_runtime
from paradarum.services.context import ClientInfo
from tests.support import run

runner = CliRunner()
app = build_app()


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path):
    data = tmp_path / "data"
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    with sqlite3.connect(data / "paradarum.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"accounts", "api_keys", "alembic_version"} <= tables


def test_accounts_create_prompts_for_the_password_and_works_with_signup_off(tmp_path, monkeypatch):
    monkeypatch.setenv("PARADARUM_SIGNUP_ENABLED", "false")
    data = tmp_path / "data"
    password = "an operator chosen password"
    result = runner.invoke(
        app,
        ["accounts", "create", "Ops@Example.com", "--data-dir", str(data)],
        input=f"{password}\n{password}\n",
    )
    assert result.exit_code == 0, result.output
    assert "ops@example.com" in result.output
    assert password not in result.output
    runtime = build_runtime(Settings(data_dir=data))
    try:
        session = run(
            runtime.accounts.login(email="ops@example.com", password=password, client=ClientInfo())
        )
        assert session.token
    finally:
        runtime.close()


def test_accounts_create_reports_a_short_password(tmp_path):
    result = runner.invoke(
        app,
        ["accounts", "create", "a@example.com", "--data-dir", str(tmp_path)],
        input="short\nshort\n",
    )
    assert result.exit_code == 1
    # As the customer commands print it: the sentence first, then the field's problem.
    first, *fields = result.output.splitlines()[-2:]
    assert first.startswith("Error: ")
    assert fields[0].startswith("  password: ") and "10" in fields[0]


def test_serve_on_postgresql_refuses_to_start_without_a_shared_secret(monkeypatch):
    monkeypatch.delenv("PARADARUM_JWT_SECRET", raising=False)
    result = runner.invoke(app, ["serve", "--database-url", "postgresql://nobody@127.0.0.1:1/x"])
    assert result.exit_code == 2
    assert "PARADARUM_JWT_SECRET" in result.output


def test_accounts_delete_ends_the_accounts_keys_sessions_and_zones_at_once(tmp_path, monkeypatch):
    """The operator's delete, against a server running on the same data."""
    import httpx

    from tests.support import activate_zone, bearer, create_key, login, signup, start_server

    env = {"PARADARUM_DATA_DIR": str(tmp_path / "data"), "PARADARUM_ACCESS_LOG": "false"}
    server = start_server(env, log_path=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            signup(http, "leaving@example.com")
            activate_zone(env, "leaving@example.com", "leaving.example")
            token = login(http, "leaving@example.com")
            key = create_key(http, token)["key"]
            assert http.get("/api/account", headers=bearer(key)).status_code == 200
            refused = runner.invoke(
                app,
                [
                    "accounts",
                    "delete",
                    "leaving@example.com",
                    "--data-dir",
                    env["PARADARUM_DATA_DIR"],
                ],
                input="n\n",
            )
            assert refused.exit_code == 0 and "leaving@example.com" in refused.output
            assert refused.output.splitlines()[-1] == "Nothing was changed."
            assert http.get("/api/account", headers=bearer(key)).status_code == 200
            deleted = runner.invoke(
                app,
                [
                    "accounts",
                    "delete",
                    "leaving@example.com",
                    "--yes",
                    "--data-dir",
                    env["PARADARUM_DATA_DIR"],
                ],
            )
            assert deleted.exit_code == 0, deleted.output
            for credential in (key, token):
                assert http.get("/api/account", headers=bearer(credential)).status_code == 401
            # The zone went with it: another account can have the hostname now.
            signup(http, "next@example.com")
            activate_zone(env, "next@example.com", "leaving.example")
            missing = runner.invoke(
                app,
                [
                    "accounts",
                    "delete",
                    "nobody@example.com",
                    "--yes",
                    "--data-dir",
                    env["PARADARUM_DATA_DIR"],
                ],
            )
            assert missing.exit_code == 1 and "No account" in missing.output
    finally:
        server.stop()


def test_commands_about_existing_data_do_not_start_an_empty_database(tmp_path):
    """Run from the wrong directory, they say where they looked, and create nothing."""
    elsewhere = tmp_path / "not-the-data"
    for args in (
        ["zones", "add", "you@example.com", "www.example.com", "--verified"],
        ["zones", "list", "you@example.com"],
        ["accounts", "delete", "you@example.com", "--yes"],
    ):
        result = runner.invoke(app, [*args, "--data-dir", str(elsewhere)])
        assert result.exit_code == 1, result.output
        assert f"No database at {elsewhere.resolve() / 'paradarum.db'}" in result.output
        assert not elsewhere.exists()


def test_operator_commands_do_not_upgrade_a_schema_in_use(tmp_path):
    """Upgrading is `db upgrade`'s job: an account created with a newer paradarum
    must not migrate the database under the servers using it."""
    from paradarum.db.migrate import current_revision, downgrade
    from paradarum.runtime import open_database

    data = tmp_path / "data"
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", str(data)]).exit_code == 0
    db = open_database(Settings(data_dir=data))
    try:
        downgrade(db, "0003")
    finally:
        db.close()
    result = runner.invoke(
        app,
        ["accounts", "create", "a@example.com", "--data-dir", str(data)],
        input="an operator chosen password\n" * 2,
    )
    assert result.exit_code == 1
    assert "paradarum db upgrade" in result.output.splitlines()[-1]
    db = open_database(Settings(data_dir=data))
    try:
        with db.reading() as conn:
            assert current_revision(conn) == "0003"
    finally:
        db.close()
