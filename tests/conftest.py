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


def _admin_sql(base: str, statement: str) -> None:
    admin = create_engine(_sqlalchemy_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test process alone (xdist worker, or a second run at the same time),
    so nobody truncates another run's tables. Dropped at the end."""
    head, _, name = PG_URL.rpartition("/")
    db_name = f"{name}_dd_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}"')
    _admin_sql(PG_URL, f'CREATE DATABASE "{db_name}"')
    yield f"{head}/{db_name}"
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(Settings(env="development", database_url=f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def migrated_pg(pg_url: str) -> str:
    migrate(Settings(env="development", database_url=pg_url))
    return pg_url


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
