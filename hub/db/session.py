"""Engines, sessions and schema upgrades for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_serialised_writes(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2)
    _postgres_custom_plans(engine)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine, idle: float = PING_AFTER_IDLE_SECONDS) -> None:
    """`pool_pre_ping`, for connections that sat in the pool: a connection handed back a moment
    ago is alive, and pinging it cost every group commit a round trip (a busy hub checks its
    connections out hundreds of times a second). One idle for longer (across a database
    restart, say) is pinged and, if dead, replaced before anyone uses it."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle:
            return  # just made, or just handed back
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection is gone") from exc


def _postgres_custom_plans(engine: Engine) -> None:
    """psycopg prepares a statement run five times, and PostgreSQL may then switch it to a
    generic plan, costed with the statistics of whenever the table was last analysed. During a
    bulk load those are stale: a batch's `provider = $1 AND event_id IN ($2, …)` became an index
    scan on `provider` alone plus a filter over every stored event (0.3 ms grew to 580 ms per
    batch of 500 in a replay). Planning every execution with its values costs well under a
    millisecond and keeps the parse saved by preparing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()


def _sqlite_serialised_writes(engine: Engine) -> None:
    """SQLite upgrades a read lock to a write lock lazily and can then deadlock; taking the write
    lock at BEGIN (IMMEDIATE) makes concurrent writers queue instead."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection the database itself refuses to write through, reading one consistent
    snapshot, without holding any lock that would make writers wait (long reports, what-ifs)."""
    if engine.dialect.name == "sqlite":
        reader = _sqlite_reader(engine)
        try:
            with reader.connect() as conn:
                yield conn
                conn.rollback()
        finally:
            reader.dispose()
        return
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield conn
        conn.rollback()


def _sqlite_reader(engine: Engine) -> Engine:
    """A private engine on the same file: `query_only`, and a deferred BEGIN (in WAL mode a
    reader then neither blocks nor waits for writers), unlike the hub's BEGIN IMMEDIATE."""
    reader = create_engine(engine.url, poolclass=NullPool,
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA query_only = ON")
        dbapi_conn.execute("PRAGMA busy_timeout = 30000")

    @event.listens_for(reader, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return reader


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine | None = None, url: str | None = None) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to run on every start)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
