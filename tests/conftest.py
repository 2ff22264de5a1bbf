"""Real databases for every test: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.

Each database is migrated once per test run with Alembic (so the migrations are what the tests use);
each test then gets a fresh copy (SQLite: a copied file) or emptied tables (PostgreSQL: TRUNCATE).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel

from server.app import create_app
from server.config import Settings
from server.db import _sqlalchemy_url, make_engine, migrate

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def _worker_pg_url(base: str) -> str:
    """One PostgreSQL database per xdist worker, so parallel workers never truncate each other's tables."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    head, _, name = base.rpartition("/")
    db_name = f"{name}_dd_{worker}"
    admin = create_engine(_sqlalchemy_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": db_name}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    admin.dispose()
    return f"{head}/{db_name}"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(Settings(env="development", database_url=f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def migrated_pg() -> str:
    url = _worker_pg_url(PG_URL)
    engine = create_engine(_sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(Settings(env="development", database_url=url))
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("migrated_pg")
    engine = create_engine(_sqlalchemy_url(url))
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        database_url=database_url,
        data_dir=tmp_path,
        base_url="http://testserver",
        secret_key="test-secret-key-0123456789-abcdefghijklmnop",
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[object]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: object) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:  # type: ignore[arg-type]
        yield session


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as client:
        yield client
