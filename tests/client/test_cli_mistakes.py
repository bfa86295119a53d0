"""What a new user gets wrong gets one line that says what is wrong (issue 15), and the help
says where the server and the key come from."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
import typer
from typer.testing import CliRunner

import paradarum
import paradarum_client
from paradarum.keys import generate
from paradarum_client.cli import build_app
from tests.client.harness import run_paradarum
from tests.support import PASSWORD, free_port, signup


def invoke(*args: str, env: dict[str, str]):
    """In-process; the result's output is standard error and output together."""
    result = CliRunner().invoke(build_app(), list(args), env={"PARADARUM_API_KEY": "", **env})
    # An exception that escaped the command would print a traceback for a user.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def wrong_checksum(key: str) -> str:
    """``key`` with its last character changed: key-shaped, but no key."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def every_command(app: typer.Typer) -> list[list[str]]:
    """Every command path of ``app`` (``[]`` for the app itself), groups included."""
    command = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(current: object, path: list[str]) -> None:
        paths.append(path)
        # A group has commands (Typer's own click or the click package, by version).
        for name, child in getattr(current, "commands", {}).items():
            walk(child, [*path, name])

    walk(command, [])
    assert len(paths) > 10, paths
    return paths


KEY_MISTAKES = [
    ("trailing newline", lambda key: key + "\n", "spaces or a line break around it"),
    ("trailing space", lambda key: key + " ", "spaces or a line break around it"),
    ("not a key at all", lambda key: "hunter2", "a Paradarum API key starts with pdm_"),
    ("cut short", lambda key: key[:20], "is 32 characters long, this one 20"),
    ("mistyped", wrong_checksum, "checksum does not match"),
]


@pytest.mark.parametrize(
    ("mistake", "spoil", "said"), KEY_MISTAKES, ids=[m[0] for m in KEY_MISTAKES]
)
def test_a_key_that_cannot_work_is_reported_as_exactly_that_with_status_2(mistake, spoil, said):
    key = spoil(generate())
    closed = f"http://127.0.0.1:{free_port()}"
    result = invoke("keys", "list", env={"PARADARUM_API_KEY": key, "PARADARUM_URL": closed})
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output  # one line
    assert said in result.output and "PARADARUM_API_KEY" in result.output
    assert "Cannot reach" not in result.output
    assert key.strip() not in result.output


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("127.0.0.1:8000", "must start with http:// or https://"),
        ("paradarum.example", "must start with http:// or https://"),
        ("ftp://paradarum.example", "must start with http:// or https://"),
        ("https://", "has no host name"),
        ("https://paradarum.example\n", "spaces or a line break"),
    ],
)
def test_a_server_url_without_http_or_https_is_reported_as_exactly_that(url, said, tmp_path):
    for how in ({"PARADARUM_URL": url}, {}):
        args = ["purges", "list"] if how else ["purges", "list", "--url", url]
        result = invoke(
            *args, env={**how, "PARADARUM_API_KEY": generate(), "XDG_CONFIG_HOME": str(tmp_path)}
        )
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and said in result.output, result.output
        assert "UnsupportedProtocol" not in result.output


def test_login_with_a_url_without_a_scheme_says_so(tmp_path):
    result = invoke(
        "login",
        "--email",
        "a@example.com",
        "--url",
        "localhost:8000",
        env={"PARADARUM_PASSWORD": "x" * 12, "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "must start with http:// or https://" in result.output


@pytest.mark.slow
def test_a_client_error_never_prints_a_traceback(api_server, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    closed = f"http://127.0.0.1:{free_port()}"
    cases = [
        # Nobody listening.
        (["keys", "list"], {"PARADARUM_API_KEY": generate(), "PARADARUM_URL": closed}),
        # Something that answers, but not Paradarum: an empty 200.
        (
            ["keys", "list"],
            {"PARADARUM_API_KEY": generate(), "PARADARUM_URL": api_server.node.base_url},
        ),
        # A well-formed key no account has.
        (
            ["purge", "--everything"],
            {"PARADARUM_API_KEY": generate(), "PARADARUM_URL": api_server.url},
        ),
        (
            ["zones", "verify", "1"],
            {"PARADARUM_API_KEY": generate(), "PARADARUM_URL": api_server.url},
        ),
        (
            ["keys", "usage", "1"],
            {"PARADARUM_API_KEY": generate(), "PARADARUM_URL": api_server.url},
        ),
        # The operator's command, on a database without that account.
        (
            ["zones", "add", "nobody@example.com", "www.example.com", "--verified"],
            {"PARADARUM_API_KEY": generate(), "PARADARUM_DATA_DIR": str(tmp_path / "data")},
        ),
    ]
    for args, extra in cases:
        result = run_paradarum(*args, env={**env, **extra})
        stderr = result.stderr.decode()
        assert result.returncode == 1, stderr
        assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
        assert "Traceback" not in stderr
        assert extra["PARADARUM_API_KEY"][:8] not in stderr


def test_a_duration_that_cannot_be_read_is_a_usage_error_not_a_traceback(tmp_path):
    env = {"PARADARUM_API_KEY": generate(), "XDG_CONFIG_HOME": str(tmp_path)}
    for args in (
        ["keys", "create", "x", "--expires", "soon"],
        ["keys", "roll", "1", "--grace", "8d"],
    ):
        result = run_paradarum(*args, env=env)
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert "Traceback" not in stderr and stderr.splitlines()[-1].startswith("Error: Invalid")


def test_help_has_no_type_labels_on_flags_and_names_the_environment():
    runner = CliRunner()
    app = build_app()
    for path in every_command(app):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output)
        # A flag shows its metavar, never a type label (Typer 0.29 and later label an
        # argument's type, "NAME <str>", which reads as the argument's form).
        flags = [line for line in result.output.splitlines() if line.lstrip().startswith("-")]
        assert not [line for line in flags if re.search(r"<\w+>", line)], (path, result.output)
        if "--url" in result.output:
            assert "PARADARUM_URL" in result.output, path
    assert "PARADARUM_URL" in runner.invoke(app, ["keys", "list", "--help"]).output
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "100"}).output
    assert "PARADARUM_API_KEY" in top and "PARADARUM_URL" in top and "--version" in top


def test_version_prints_the_version_the_server_has():
    result = CliRunner().invoke(build_app(), ["--version"])
    assert result.exit_code == 0
    assert result.output == f"paradarum {paradarum_client.__version__}\n"
    assert paradarum_client.__version__ == paradarum.__version__
    installed = run_paradarum("--version", env={})
    assert installed.stdout.decode().split() == ["paradarum", paradarum.__version__]


@pytest.mark.slow
def test_a_session_that_cannot_be_kept_is_one_line_not_a_traceback(api_server, tmp_path):
    email = f"nowhere-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=api_server.url) as http:
        signup(http, email)
    not_a_directory = tmp_path / "config"
    not_a_directory.write_text("a file where the config directory should be")
    result = invoke(
        "login",
        "--email",
        email,
        env={
            "PARADARUM_URL": api_server.url,
            "PARADARUM_PASSWORD": PASSWORD,
            "XDG_CONFIG_HOME": str(not_a_directory),
        },
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and str(not_a_directory) in result.output


def test_a_refusal_says_each_problem_once(api_server, tmp_path):
    """A one-field refusal's sentence is that field's problem: not printed twice."""
    email = f"once-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=api_server.url) as http:
        signup(http, email)
        token = http.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()[
            "data"
        ]["token"]
        key = http.post(
            "/api/account/apikeys", json={"name": "k"}, headers={"Authorization": f"Bearer {token}"}
        ).json()["data"]["key"]
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PARADARUM_URL": api_server.url}
    result = run_paradarum(
        "zones", "add", "https://www.example.com/", env={**env, "PARADARUM_API_KEY": key}
    )
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert stderr.startswith("Error: Enter the hostname alone") and stderr.count("\n") == 1, stderr
