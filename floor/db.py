"""Database engine, sessions and the unit of work.

One `Database` per app. Entry points run an operation inside `unit_of_work()`; operations
only flush. SQLite runs in WAL mode with BEGIN IMMEDIATE, so that a transaction that reads
and then writes waits for the lock instead of failing on upgrade.

Durability (docs/durability.md): SQLite's `synchronous` level is FLOOR_SQLITE_SYNCHRONOUS
(NORMAL by default: every commit survives a kill -9 of the server; FULL also a power loss),
applied on every new connection with the busy timeout (FLOOR_SQLITE_BUSY_TIMEOUT_MS). A
database that cannot be reached, or a lock not granted in time, ends the transaction with
`DatabaseUnavailable` (503 ``database_unavailable``): nothing was committed (unless the link
broke during the COMMIT itself), and the client sends the same request again; a scan's
`scan_id` makes that replay safe either way.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

from flask import Flask, current_app, g
from sqlalchemy import JSON, DateTime, create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
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


# NORMAL in WAL mode survives a process crash (the WAL is in the OS's page cache); a power
# loss may drop the last commits, never corrupt. FULL syncs the WAL on every commit, EXTRA
# the directory too. OFF is not offered: it gives up durability on purpose.
SQLITE_SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")
DEFAULT_SQLITE_SYNCHRONOUS = "NORMAL"
DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 10_000


def sqlite_synchronous_level(value: str | None) -> str:
    """The FLOOR_SQLITE_SYNCHRONOUS setting checked: one of SQLITE_SYNCHRONOUS_LEVELS."""
    level = (value or DEFAULT_SQLITE_SYNCHRONOUS).strip().upper()
    if level not in SQLITE_SYNCHRONOUS_LEVELS:
        raise ValueError(f"FLOOR_SQLITE_SYNCHRONOUS is one of {', '.join(SQLITE_SYNCHRONOUS_LEVELS)}"
                         f", not {value!r}")
    return level


def _sqlite_pragmas(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the lock up front (a deferred read-then-write fails instead of waiting);
        # readers stay deferred and never block anyone in WAL mode.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("floor_write")
                             else "BEGIN")


def create_private_sqlite_file(url: str) -> None:
    """An SQLite database file that does not exist yet is created empty with mode 0600 (its
    folder 0700 when made here): SQLite gives the -wal and -shm files it makes later the
    database file's mode, so users' hashes, tokens' digests and orders' addresses are readable
    by the service's account only, whatever the umask."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)     # O_CREAT's mode is masked by the umask; 0600 needs no widening


def make_engine(url: str, *, sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS,
                sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    if url.startswith("sqlite"):
        create_private_sqlite_file(url)
        level = sqlite_synchronous_level(sqlite_synchronous)
        if sqlite_busy_timeout_ms < 0:
            raise ValueError("FLOOR_SQLITE_BUSY_TIMEOUT_MS is 0 or more")
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": sqlite_busy_timeout_ms / 1000},
                               pool_size=20, max_overflow=20)
        _sqlite_pragmas(engine, level, sqlite_busy_timeout_ms)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # pre_ping: a connection the database (or the network) dropped during an outage is
    # replaced when next checked out, so the service recovers without a restart.
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5})


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS,
                 sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS) -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous=sqlite_synchronous,
                                  sqlite_busy_timeout_ms=sqlite_busy_timeout_ms)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler wakes waiters by polling, not in
        # order: queueing writers on a lock in the process gives short, fair waits instead of
        # multi-second tails. (SQLite serves one process; PostgreSQL needs no such lock.)
        self.write_lock: Any = threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        # A writer waits for that lock no longer than SQLite would wait for its own lock:
        # past that the database is busy beyond what a scanner should wait for (503).
        self.write_lock_timeout_s = sqlite_busy_timeout_ms / 1000

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
    """Lock timeouts, serialization failures and lost uniqueness races are worth one more try.
    A writer that waited its whole busy timeout for a turn is not: it answers at once."""
    if isinstance(exc, WriterTurnTimeout):
        return False
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}:
        return True
    return False


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or did not grant a lock in time (SQLite "database is
    locked" after the busy timeout, a PostgreSQL connection refused or dropped, no pooled
    connection free): nothing was committed and the same request may be sent again."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def run_in_transaction(fn: Callable[[Session], T], attempts: int = 4) -> T:
    """Run `fn` in one transaction and commit; retry on races. Operations never commit.
    Raises `DatabaseUnavailable` when the database stays out of reach over the attempts."""
    try:
        return _run_in_transaction(fn, attempts)
    except Exception as exc:
        if is_unavailable(exc):
            from floor.errors import DatabaseUnavailable

            raise DatabaseUnavailable() from exc
        raise


def _run_in_transaction(fn: Callable[[Session], T], attempts: int) -> T:
    session = db_session()
    if session.in_transaction():
        # End the request's read-only work (e.g. the token lookup) so the write transaction
        # starts fresh and, on SQLite, takes the write lock up front.
        session.commit()
    database = get_db()
    for attempt in range(attempts):
        try:
            with _writer_turn(database):
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


class WriterTurnTimeout(OperationalError):
    """No turn at SQLite's in-process write lock within the busy timeout."""

    def __init__(self, waited_s: float) -> None:
        super().__init__("acquire the write lock", None,
                         Exception(f"no turn to write within {waited_s:.1f} s"))


@contextlib.contextmanager
def _writer_turn(database: Database) -> Iterator[None]:
    lock = database.write_lock
    if isinstance(lock, contextlib.nullcontext):
        yield
        return
    if not lock.acquire(timeout=max(database.write_lock_timeout_s, 0.001)):
        raise WriterTurnTimeout(database.write_lock_timeout_s)
    try:
        yield
    finally:
        lock.release()


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
