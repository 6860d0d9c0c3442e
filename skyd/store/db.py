"""Opening the SQLite store: pragmas, the single-writer lock, and applying migrations."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from skyd.errors import StateLockedError, StoreError
from skyd.store.migrations import load_migrations
from skyd.store.sealing import Sealer, SealingConnection, seal_existing

if TYPE_CHECKING:
    import sqlite_utils


class Store:
    """One SQLite connection (the daemon is the only writer) plus its state-dir lock.

    Hot paths use `conn` with plain SQL. `db` is the sqlite-utils view of the same
    connection for maintenance, bulk loads and reports; it is built on first use because
    importing sqlite-utils pulls in pandas when installed (a second of start-up).
    """

    def __init__(
        self, conn: sqlite3.Connection, lock_fd: int | None, path: Path | None = None
    ) -> None:
        self.conn = conn
        self.path = path
        self._lock_fd = lock_fd
        self._db: sqlite_utils.Database | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of change: a state change and its event commit together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def reader(self) -> Store:
        """A second, read-only connection to the same database, for a worker thread: WAL
        lets it read while the loop's connection writes. Not the writer; no lock."""
        if self.path is None:
            raise StoreError("this store has no file to open a reader on")
        return open_reader(self.path)

    def checkpoint(self) -> None:
        """Copy the WAL back into the database on a connection of its own (call it from a
        worker thread). PASSIVE: it never blocks the writer; what it cannot copy now, the
        next call does."""
        if self.path is None:
            return
        conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def applied_migrations(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def open_reader(path: Path) -> Store:
    """A read-only connection to the database file at `path` (another thread or process
    reads while the daemon writes: WAL). Not the writer; no lock."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    return Store(conn, None, path)


def _take_lock(state_dir: Path) -> int:
    fd = os.open(state_dir / "skyd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateLockedError(
            f"state directory {state_dir} is in use by another skyd "
            f"(lock {state_dir / 'skyd.lock'})"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    migrations = load_migrations()
    known = [name for name, _ in migrations]
    unknown = applied - set(known)
    if unknown:
        raise StoreError(
            f"the database has migrations this skyd does not know ({', '.join(sorted(unknown))}); "
            "it was written by a newer skyd — upgrade skyd"
        )
    for name, sql in migrations:
        if name in applied:
            continue
        # executescript would COMMIT implicitly; run statements one by one inside one transaction
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, time.time()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _split_sql(script: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def open_store(state_dir: Path, *, lock: bool = True) -> Store:
    """Open (creating and migrating) the store in `state_dir`; with `lock`, as its only writer."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    lock_fd = _take_lock(state_dir) if lock else None
    db_path = state_dir / "skyd.db"
    try:
        # born 0600 (its -wal and -shm files take the same mode): task specs live there
        os.close(os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(db_path, 0o600)
        conn = sqlite3.connect(
            db_path,
            isolation_level=None,
            check_same_thread=False,
            timeout=10.0,
            factory=SealingConnection,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        _migrate(conn)
        conn.sealer = Sealer.for_state_dir(state_dir)
        if lock:
            conn.execute("BEGIN IMMEDIATE")
            done = conn.execute("SELECT 1 FROM store_flags WHERE name = 'envs_sealed'")
            if done.fetchone() is None:
                seal_existing(conn, conn.sealer)  # specs stored before env values were sealed
                conn.execute(
                    "INSERT INTO store_flags (name, set_at) VALUES ('envs_sealed', ?)",
                    (time.time(),),
                )
            conn.execute("COMMIT")
            # the daemon's writer never checkpoints inline (a checkpoint fsyncs the database
            # and would stall every request behind it): Store.checkpoint() does, off the loop
            conn.execute("PRAGMA wal_autocheckpoint=0")
    except sqlite3.DatabaseError as exc:
        if lock_fd is not None:
            os.close(lock_fd)
        raise StoreError(f"cannot open the state store {state_dir / 'skyd.db'}: {exc}") from exc
    return Store(conn, lock_fd, state_dir / "skyd.db")
