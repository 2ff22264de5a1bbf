"""Settings come only from DIEMDANH_* variables, are all documented, and refuse unsafe values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import DEV_SECRET, ROOT, SETTING_NAMES, Settings, SettingsError

SECRET = "a-real-secret-that-is-long-enough-0123456789"


def test_every_setting_is_documented_in_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in SETTING_NAMES if f"`{name}`" not in readme]
    assert missing == []


def test_readme_documents_no_setting_that_does_not_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    import re

    documented = set(re.findall(r"`(DIEMDANH_[A-Z_]+)`", readme))
    assert documented <= set(SETTING_NAMES)


def test_default_secret_is_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="DIEMDANH_SECRET_KEY"):
        Settings.from_env({"DIEMDANH_ENV": "production"})


def test_default_secret_is_allowed_in_development() -> None:
    assert Settings.from_env({"DIEMDANH_ENV": "development"}).secret_key == DEV_SECRET


def test_base_url_follows_host_and_port_unless_set() -> None:
    assert Settings.from_env({"DIEMDANH_ENV": "development", "DIEMDANH_PORT": "8080"}).base_url == (
        "http://127.0.0.1:8080"
    )
    everywhere = Settings.from_env({"DIEMDANH_ENV": "development", "DIEMDANH_HOST": "0.0.0.0"})
    assert everywhere.base_url == "http://127.0.0.1:8000"
    chosen = {
        "DIEMDANH_ENV": "development",
        "DIEMDANH_BASE_URL": "https://dd.example.vn/",
        "DIEMDANH_PORT": "1",
    }
    assert Settings.from_env(chosen).base_url == "https://dd.example.vn"


def test_short_secret_is_refused() -> None:
    with pytest.raises(SettingsError, match="32"):
        Settings.from_env({"DIEMDANH_SECRET_KEY": "short"})


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "DIEMDANH_SECRET_KEY": SECRET,
            "DIEMDANH_BASE_URL": "https://diemdanh.example.vn/",
            "DIEMDANH_PORT": "9000",
            "DIEMDANH_CHECKIN_MARGIN_MINUTES": "30",
            "DIEMDANH_DATA_DIR": "/tmp/dd",
        }
    )
    assert settings.base_url == "https://diemdanh.example.vn" and settings.secure_cookies
    assert settings.port == 9000 and settings.checkin_margin_minutes == 30
    assert settings.database_url == f"sqlite:///{Path('/tmp/dd') / 'diemdanh.sqlite3'}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIEMDANH_PORT", "tám nghìn"),
        ("DIEMDANH_TIMEZONE", "Mars/Olympus"),
        ("DIEMDANH_BASE_URL", "diemdanh.vn"),
        ("DIEMDANH_ENV", "staging"),
        ("DIEMDANH_CHECKIN_MARGIN_MINUTES", "-5"),
        ("DIEMDANH_SQLITE_SYNCHRONOUS", "off"),
        ("DIEMDANH_DATABASE_POOLER", "pgpool"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"DIEMDANH_SECRET_KEY": SECRET, name: value})


def test_cli_refuses_to_start_with_the_default_secret(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DIEMDANH_ENV": "production", "DIEMDANH_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "server", "migrate"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 2 and "DIEMDANH_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("command", ["serve", "migrate", "demo", "create-user", "load-communes"])
def test_every_command_explains_itself(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", command, "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0 and "usage: diemdanh" in result.stdout and len(result.stdout) > 150
