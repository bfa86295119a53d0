import os
import stat

import pytest
from pydantic import ValidationError

from paradarum.config import Settings, load_or_create_secret


def test_lists_accept_commas_or_json(monkeypatch):
    monkeypatch.setenv("PARADARUM_TRUSTED_PROXIES", "10.0.0.1, 10.1.0.0/16")
    monkeypatch.setenv("PARADARUM_CACHE_NODES", '["http://127.0.0.1:6081"]')
    settings = Settings()
    assert settings.trusted_proxies == ["10.0.0.1", "10.1.0.0/16"]
    assert settings.cache_nodes == ["http://127.0.0.1:6081"]


def test_a_bad_trusted_proxy_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("PARADARUM_TRUSTED_PROXIES", "not-an-address")
    with pytest.raises(ValidationError):
        Settings()


def test_postgres_urls_select_the_psycopg_driver():
    settings = Settings(database_url="postgresql://u@h/db")
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert not settings.is_sqlite


def test_secret_is_generated_once_with_mode_0600(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    first = load_or_create_secret(settings)
    second = load_or_create_secret(settings)
    assert first == second and len(first) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "d" / "jwt-secret").st_mode)
    assert mode == 0o600


def test_configured_secret_wins_and_must_be_long(tmp_path):
    assert load_or_create_secret(Settings(data_dir=tmp_path, jwt_secret="k" * 40)) == "k" * 40
    with pytest.raises(ValueError):
        load_or_create_secret(Settings(data_dir=tmp_path, jwt_secret="short"))
    assert not (tmp_path / "jwt-secret").exists()


def test_processes_starting_together_agree_on_one_secret(tmp_path):
    import threading

    settings = Settings(data_dir=tmp_path / "d")
    barrier = threading.Barrier(16)
    results: list[str] = []

    def start() -> None:
        barrier.wait()
        results.append(load_or_create_secret(settings))

    threads = [threading.Thread(target=start) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results[0]) >= 32
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["jwt-secret"]


def test_an_empty_secret_file_is_refused_not_used(tmp_path):
    (tmp_path / "jwt-secret").write_text("")
    with pytest.raises(ValueError, match="no usable secret"):
        load_or_create_secret(Settings(data_dir=tmp_path))
