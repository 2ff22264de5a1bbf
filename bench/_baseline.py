"""The ceilings bench/load.py compares the app with, run by the same uvicorn with the same settings and
worker count:

- `GET /`: bare FastAPI, tiny JSON (no database, no middleware, no template): the framework's floor;
- `POST /naive`: a naive FastAPI + SQLModel write, one form field stored as one row and committed, with no
  rule, log, template or middleware: what one ORM insert costs on this stack. Its database is
  DD_NAIVE_DATABASE_URL (SQLite: WAL and synchronous=FULL, the app's durable default; the bench creates
  the table before starting this server).
"""

import os
from typing import Annotated

from fastapi import FastAPI, Form
from sqlalchemy import event
from sqlmodel import Field, Session, SQLModel, create_engine

app = FastAPI()


class NaiveRow(SQLModel, table=True):
    __tablename__ = "bench_naive"

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(max_length=64, unique=True)


def naive_engine(url: str):  # type: ignore[no-untyped-def]
    """The naive write's engine: SQLAlchemy's defaults, plus what SQLite needs to be durable and to wait."""
    if not url.startswith("sqlite"):
        return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def pragmas(connection, _record):  # type: ignore[no-untyped-def]
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")

    return engine


URL = os.environ.get("DD_NAIVE_DATABASE_URL", "")
ENGINE = naive_engine(URL) if URL else None


@app.get("/")
async def ping() -> dict[str, bool]:
    """Tiny JSON, as fast as the framework answers anything."""
    return {"ok": True}


@app.post("/naive")
def naive(nonce: Annotated[str, Form(max_length=64)]) -> dict[str, bool]:
    """One row in, committed: a plain `def` in FastAPI's thread pool, as most SQLModel tutorials write it."""
    assert ENGINE is not None, "DD_NAIVE_DATABASE_URL is not set"
    with Session(ENGINE) as session:
        session.add(NaiveRow(nonce=nonce))
        session.commit()
    return {"ok": True}
