"""Database engine, sessions and the unit of work.

One `Database` per app. Entry points run an operation inside `unit_of_work()`; operations
only flush. SQLite runs in WAL mode with BEGIN IMMEDIATE, so that a transaction that reads
and then writes waits for the lock instead of failing on upgrade.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

from flask import Flask, current_app, g
from sqlalchemy import JSON, DateTime, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: UTCDateTime}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; a power loss may drop the last commits.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the lock up front (a deferred read-then-write fails instead of waiting);
        # readers stay deferred and never block anyone in WAL mode.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("floor_write")
                             else "BEGIN")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10},
                               pool_size=20, max_overflow=20)
        _sqlite_pragmas(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler wakes waiters by polling, not in
        # order: queueing writers on a lock in the process gives short, fair waits instead of
        # multi-second tails. (SQLite serves one process; PostgreSQL needs no such lock.)
        self.write_lock: Any = threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()

    def init_app(self, app: Flask) -> None:
        app.extensions["floor.db"] = self
        app.teardown_appcontext(_close_session)


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["floor.db"]


def db_session() -> Session:
    """The session of the current app context (request or socket event)."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def is_retryable(exc: BaseException) -> bool:
    """Lock timeouts, serialization failures and lost uniqueness races are worth one more try."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}:
        return True
    return False


def run_in_transaction(fn: Callable[[Session], T], attempts: int = 4) -> T:
    """Run `fn` in one transaction and commit; retry on races. Operations never commit."""
    session = db_session()
    if session.in_transaction():
        # End the request's read-only work (e.g. the token lookup) so the write transaction
        # starts fresh and, on SQLite, takes the write lock up front.
        session.commit()
    write_lock = get_db().write_lock
    for attempt in range(attempts):
        try:
            with write_lock:
                session.connection(execution_options={"floor_write": True})
                try:
                    result = fn(session)
                    session.commit()
                    return result
                except BaseException:
                    session.rollback()
                    raise
        except Exception as exc:
            if attempt + 1 < attempts and is_retryable(exc):
                time.sleep(0.01 * (attempt + 1))
                continue
            raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def standalone_session(app: Flask, write: bool = True) -> Iterator[Session]:
    """A session outside any request, for CLI commands and background work. A writing one
    takes SQLite's write lock up front: a read that later turns into a write while a running
    server writes would fail with "database is locked" instead of waiting its turn."""
    session = get_db(app).sessionmaker()
    try:
        if write:
            session.connection(execution_options={"floor_write": True})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
