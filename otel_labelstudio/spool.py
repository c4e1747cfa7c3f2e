"""The durable spool: what we accepted, until Label Studio has it, and the ledger of what it has.

One SQLite file (WAL), five tables:

    inbox        GenAI spans and log events as received, one row per request (the service) or
                 per batch (the exporter), until every record of the row has become a task that
                 is stored or delivered (or turned out not to be one). A span waiting for its
                 events, and events waiting for their span, are here: the service acknowledges a
                 request only once its records are committed, so `kill -9` at any moment loses
                 nothing acknowledged.
    tasks        shaped tasks, keyed by span key; state READY or IN_FLIGHT (an import was sent
                 and its outcome is not known yet). Their JSON is in `task_payloads`, apart, so
                 that marking a batch in flight rewrites small rows only.
    in_flight    keys (and project) of tasks imported straight from memory, without being
                 stored: committed before the import is sent, deleted with the ledgering.
    delivered    the ledger: span keys Label Studio has, with the task id it gave. The same span
                 received again never becomes a second task.
    dead_letter  tasks Label Studio refused for good (400), with its reason; `otel-labelstudio
                 dlq` lists them and sends them back to `tasks`.

Bounded in bytes: the payload bytes of `inbox` and `tasks` together stay under `max_bytes`;
`add_records` answers False past it, so the service tells senders to retry and the exporter
drops (counted). Commits use `synchronous=NORMAL`: durable against a crash of the process
(what `kill -9` is), not against a power cut of the machine.

An inbox row is written once and deleted once, whatever it holds: SQLite's cost is per byte and
per row, so one row per request keeps it to a few microseconds per record. The service stores the
GenAI part of each request as OTLP protobuf (the receivers cut it out of the request with the
protobuf library, and the worker decodes it with the same code as any request); the exporter's
records, made from SDK objects, are pickled: the spool is a private file of this process's user
(mode 0600), read only by otel-labelstudio, and pickle round-trips every attribute value (bytes,
tuples) at C speed. It holds prompts before redaction (redaction depends on the route, which is
chosen later): keep it where the telemetry itself may be kept. What is deleted from it is
overwritten in the file (`secure_delete`), so delivered prompts do not linger in free pages.

A row is deleted when all its records are done with: the reader counts the records it handed
out per row, and `forget_records` is given one row id per record. After a restart a row comes
back whole; the records of it that already made a task are recognised by their span key.

Two ways from the inbox to Label Studio. While delivery keeps up, a task is never stored: the
delivery thread holds it in memory (a few batches at most) with the inbox rows it was made from,
which stay here until it is delivered. `claim` drops the keys already stored, delivered or
dead-lettered and commits the rest to `in_flight`; after the import, `mark_delivered` ledgers
them, deletes the marks and forgets their records, in one transaction. A crash in between
leaves marks (looked up in Label Studio at the next start: found, ledgered; else dropped) and
the rows, whose records make the tasks again. While delivery has no room, the worker waits and
the records stay here. When Label Studio fails (or an import's outcome is to be looked up),
tasks are stored (`add_tasks`, `store_held`) and their records forgotten, so memory holds
nothing that waits for it; stored tasks go the same way through `tasks`. Skipping the store
saves the payload written, read back and securely deleted: handing over and delivering cost
15 µs of CPU per LLM call where storing and delivering cost 27 (bench_serve_stages.py).

One process uses one spool file at a time (an exclusive lock beside it): `open_slot` takes the
first free slot of a directory, so replicas and forked workers on one machine each have their own,
and a restarted process picks up the file a dead one left.

Thread-safe: one connection behind a lock; every method is one short transaction.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from otel_labelstudio.model import EventRecord, SpanRecord, Task

__all__ = [
    "OTLP_LOGS",
    "OTLP_TRACES",
    "PICKLED_RECORDS",
    "DeadLetter",
    "Encoded",
    "Inbox",
    "Spool",
    "SpooledTask",
    "default_spool_dir",
    "encode_task",
]

logger = logging.getLogger(__name__)

Record = SpanRecord | EventRecord

READY = 0
IN_FLIGHT = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind INTEGER NOT NULL,
    records INTEGER NOT NULL,
    spans INTEGER NOT NULL,
    received REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    project_id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (state, seq);
CREATE TABLE IF NOT EXISTS task_payloads (
    seq INTEGER PRIMARY KEY,
    payload TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS task_gone AFTER DELETE ON tasks BEGIN
    DELETE FROM task_payloads WHERE seq = old.seq;
END;
CREATE TABLE IF NOT EXISTS delivered (
    key TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL,
    task_id INTEGER,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delivered_at ON delivered (at);
CREATE TABLE IF NOT EXISTS dead_letter (
    key TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS in_flight (
    key TEXT PRIMARY KEY,
    project_id INTEGER NOT NULL
) WITHOUT ROWID;
"""

# 3: `in_flight` added (created when a file of schema 2 is opened).
_SCHEMA_VERSION = 3
# Files of schema 1 (one pickled record per inbox row, payloads inside `tasks`) are converted
# when opened: nothing they hold is lost by an upgrade.
_FROM_VERSION_1 = """
ALTER TABLE inbox RENAME TO inbox_v1;
ALTER TABLE tasks RENAME TO tasks_v1;
DROP INDEX IF EXISTS tasks_ready;
"""
_FROM_VERSION_1_COPY = """
INSERT INTO inbox (id, kind, records, spans, received, body)
    SELECT id, 0, 1, is_span, received, body FROM inbox_v1;
INSERT INTO tasks (seq, key, project_id, size, state, created, attempts)
    SELECT seq, key, project_id, LENGTH(payload), state, created, attempts FROM tasks_v1;
INSERT INTO task_payloads (seq, payload) SELECT seq, payload FROM tasks_v1;
DROP TABLE inbox_v1;
DROP TABLE tasks_v1;
"""

# How an inbox row's body is encoded.
PICKLED_RECORD = 0  # one record (rows of schema 1)
PICKLED_RECORDS = 1  # a tuple of records (the exporter's, made from SDK objects)
OTLP_TRACES = 2  # the GenAI spans of one request: an ExportTraceServiceRequest
OTLP_LOGS = 3  # the GenAI events of one request: an ExportLogsServiceRequest

# Inbox rows fetched per query while reading up to a number of records.
_ROWS_PER_READ = 16
# Inbox rows hold whole requests (~100 KB) and tasks ~2 KB each: with SQLite's default 4 KiB
# pages they are chains of overflow pages, each written, logged and freed on its own. 32 KiB
# pages halved the spool's cost per interaction (tests/bench/bench_serve_stages.py).
_PAGE_SIZE = 32768

# How long the ledger remembers a delivered span: senders retry within minutes, replays of old
# files are the operator's choice.
LEDGER_TTL_S = 7 * 24 * 3600.0


def default_spool_dir() -> Path:
    """`$OTEL_LABELSTUDIO_SPOOL_DIR`, else otel-labelstudio's directory in the user's cache."""
    configured = os.environ.get("OTEL_LABELSTUDIO_SPOOL_DIR")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "otel-labelstudio" / "spool"


@dataclass(frozen=True, slots=True)
class Encoded:
    """Records as an inbox row holds them: `body` in the encoding `kind`, with how many records
    (and of them spans) it carries."""

    kind: int
    body: bytes
    records: int
    spans: int


@dataclass(frozen=True, slots=True)
class Inbox:
    # One entry per record: row id (shared by the records of a row), received (the spool's
    # clock), record.
    rows: list[tuple[int, float, Record]]
    complete_as_of: float | None


@dataclass(frozen=True, slots=True)
class SpooledTask:
    key: str
    project_id: int
    payload: str  # JSON
    created: float
    # A task held in memory, not stored: the inbox records it was made from (one row id per
    # record) and how many of them are spans, forgotten once it is delivered or stored.
    rows: Sequence[int] = ()
    spans: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: str
    project_id: int
    reason: str
    at: float
    payload: str


class Spool:
    def __init__(
        self,
        path: Path | None,
        *,
        max_bytes: int,
        clock: Any = time.time,
        lock_file: TextIO | None = None,
    ) -> None:
        """`path` None: an in-memory spool (no durability, same behaviour otherwise)."""
        self.path = path
        self.max_bytes = max_bytes
        self.clock = clock
        self._lock_file = lock_file
        self._lock = threading.Lock()
        self._closed_counts: dict[str, int] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            check_same_thread=False,
            isolation_level=None,  # explicit transactions only
            timeout=30.0,  # `otel-labelstudio dlq` may write while a service runs
        )
        self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # new files only
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows (delivered prompts) are overwritten in the file, whatever the build's
        # default (Debian's is on, SQLite's own off). Measured: ~3 µs per LLM call in `serve`.
        self._db.execute("PRAGMA secure_delete=ON")
        self._create_schema()
        # Tasks in flight when the last process stopped have an unknown outcome.
        self.recovered_in_flight = self._scalar(
            "SELECT (SELECT COUNT(*) FROM tasks WHERE state = 1) + (SELECT COUNT(*) FROM in_flight)"
        )
        self._bytes = self._scalar(
            "SELECT COALESCE((SELECT SUM(LENGTH(body)) FROM inbox), 0)"
            " + COALESCE((SELECT SUM(size) FROM tasks), 0)"
        )
        # Rows read and not yet done with: row id -> [records not yet forgotten, body bytes,
        # records in the row, spans in the row]; and how many records and spans of those rows
        # are done with (counts() leaves them out).
        self._open_rows: dict[int, list[int]] = {}
        self._open_done = [0, 0]
        self.prune_ledger()

    def _create_schema(self) -> None:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(inbox)")}
        if "is_span" in columns:  # a file of schema 1: converted in one transaction
            script = f"BEGIN IMMEDIATE;{_FROM_VERSION_1}{_SCHEMA}{_FROM_VERSION_1_COPY}"
            self._db.executescript(f"{script}PRAGMA user_version = {_SCHEMA_VERSION};COMMIT;")
        else:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @classmethod
    def open_slot(cls, directory: Path, name: str, *, max_bytes: int, slots: int = 64) -> Spool:
        """The first spool file `<name>-<n>.db` in `directory` no other process holds."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for n in range(slots):
            lock_path = directory / f"{name}-{n}.lock"
            lock_file = open(lock_path, "a")  # noqa: SIM115 (held for the spool's lifetime)
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock_file.close()
                continue
            return cls(directory / f"{name}-{n}.db", max_bytes=max_bytes, lock_file=lock_file)
        raise RuntimeError(f"all {slots} spool slots in {directory} are in use")

    def close(self) -> None:
        """Close the file; `counts()` keeps answering with the last figures."""
        if self._closed_counts is not None:
            return
        last = self.counts()
        with self._lock:
            self._closed_counts = last
            self._db.close()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def hold_for_fork(self) -> None:
        """Before `fork()`: wait until no thread is inside SQLite, and keep it so."""
        self._lock.acquire()

    def release_after_fork(self) -> None:
        if self._lock.locked():
            self._lock.release()

    def forget_in_child(self) -> None:
        """In a forked child: the parent's connection and lock are the parent's; drop them
        without closing (closing would act on what the parent still uses)."""
        self._lock_file = None

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return int(row[0] or 0) if row else 0

    # ---- inbox -----------------------------------------------------------------------------

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def full(self) -> bool:
        return self._bytes >= self.max_bytes

    def _adjust_bytes(self, delta: int) -> None:
        """After a commit: under the lock, as the receivers', the worker's and the delivery
        thread's updates may meet (`+=` on an attribute is not atomic)."""
        with self._lock:
            self._bytes += delta

    def add_records(self, records: Sequence[Record]) -> bool:
        """Commit `records` as one row; False (nothing stored) when the spool is at its bound."""
        if not records:
            return True
        spans = sum(1 for r in records if isinstance(r, SpanRecord))
        body = pickle.dumps(tuple(records), pickle.HIGHEST_PROTOCOL)
        return self.add_encoded(Encoded(PICKLED_RECORDS, body, len(records), spans))

    def add_encoded(self, encoded: Encoded) -> bool:
        """Commit one row of records; False (nothing stored) when the spool is at its bound."""
        size = len(encoded.body)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                return False
            # Stamped under the lock readers take: a row a reader did not see was received
            # after that reader's `complete_as_of` (read_records).
            received = self.clock()
            with self._db:
                self._db.execute(
                    "INSERT INTO inbox (kind, records, spans, received, body) VALUES (?,?,?,?,?)",
                    (encoded.kind, encoded.records, encoded.spans, received, encoded.body),
                )
            self._bytes += size
        return True

    def read_records(self, after_id: int, limit: int) -> Inbox:
        """The records of the rows stored after row `after_id`, oldest first, whole rows until
        at least `limit` records, each with its row id and when it was received. A row that
        cannot be read back is deleted and skipped (logged). `Inbox.complete_as_of`: when the
        read reached the last row, every record received up to that moment has now been read;
        else None."""
        found: list[tuple[int, float, Record]] = []
        unreadable: list[int] = []
        as_of: float | None = None
        while as_of is None and len(found) < limit:  # whole rows, until the limit is reached
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, kind, spans, received, body FROM inbox WHERE id > ?"
                    " ORDER BY id LIMIT ?",
                    (after_id, _ROWS_PER_READ),
                ).fetchall()
                if len(rows) < _ROWS_PER_READ:
                    as_of = self.clock()
            for row_id, kind, spans, received, body in rows:
                if len(found) >= limit:
                    as_of = None  # rows are left: not everything received has been read
                    break
                after_id = row_id
                try:
                    records = _decode(kind, body)
                except Exception:  # a corrupt row must not stop the rest
                    logger.exception("spool row %d is unreadable; dropped it", row_id)
                    unreadable.append(row_id)
                    continue
                if not records:
                    unreadable.append(row_id)
                    continue
                with self._lock:  # the delivery thread forgets records too
                    self._open_rows[row_id] = [len(records), len(body), len(records), int(spans)]
                at = float(received)
                found.extend((row_id, at, record) for record in records)
        if unreadable:
            self.forget_records(unreadable)
        return Inbox(found, as_of)

    def forget_records(self, row_ids: Iterable[int], spans: int = 0) -> None:
        """Records are done with (a task now holds them, or they make none): one row id per
        record, and how many of them are spans. A row goes once all the records read from it
        are done with; a row not read through this spool goes at once."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            freed = self._forget_rows(row_ids, spans)
        self._adjust_bytes(-freed)

    def _forget_rows(self, row_ids: Iterable[int], spans: int) -> int:
        """Inside a transaction: count the records off, delete the rows left with none; returns
        the bytes freed."""
        done: list[tuple[int]] = []
        unknown: list[int] = []
        freed = 0
        records_done, spans_done = self._open_done
        spans_done += spans
        for row_id in row_ids:
            open_row = self._open_rows.get(row_id)
            if open_row is None:
                unknown.append(row_id)
                continue
            records_done += 1
            open_row[0] -= 1
            if open_row[0] <= 0:
                del self._open_rows[row_id]
                done.append((row_id,))
                freed += open_row[1]
                # The row's records and spans leave the inbox's sums with it.
                records_done -= open_row[2]
                spans_done -= open_row[3]
        # With no row open, nothing can be done with (and a count given for a row that was
        # never opened must not linger).
        self._open_done = [records_done, spans_done] if self._open_rows else [0, 0]
        unknown = sorted(set(unknown))
        freed += self._sum_where_in("SELECT SUM(LENGTH(body)) FROM inbox WHERE id", unknown)
        done.extend((row_id,) for row_id in unknown)
        self._db.executemany("DELETE FROM inbox WHERE id = ?", done)
        return freed

    # ---- tasks -----------------------------------------------------------------------------

    def add_tasks(
        self, tasks: Sequence[Task], consumed: Iterable[int] = (), *, consumed_spans: int = 0
    ) -> int:
        """Store `tasks` and forget the records they were made from (one row id per record;
        `consumed_spans` of them spans), in one transaction. A task whose span is already
        spooled, delivered or dead-lettered is not stored again. Returns how many were
        stored."""
        now = self.clock()
        encoded = [SpooledTask(t.key, t.project_id, encode_task(t.payload), now) for t in tasks]
        return self._store(encoded, consumed, consumed_spans, READY)

    def store_held(self, tasks: Sequence[SpooledTask], *, in_flight: bool = False) -> int:
        """Store tasks held in memory, forget their records and drop their `in_flight` marks,
        in one transaction (`add_tasks`' dedupe applies). `in_flight`: their import's outcome
        is unknown, so they are stored as IN_FLIGHT, to be looked up before they are sent."""
        rows = [row for t in tasks for row in t.rows]
        spans = sum(t.spans for t in tasks)
        return self._store(tasks, rows, spans, IN_FLIGHT if in_flight else READY, held=True)

    def _store(
        self,
        tasks: Sequence[SpooledTask],
        consumed: Iterable[int],
        consumed_spans: int,
        state: int,
        *,
        held: bool = False,
    ) -> int:
        attempts = int(state == IN_FLIGHT)
        stored = added = 0
        with self._lock, self._db:
            self._db.execute("BEGIN")
            if state == IN_FLIGHT:  # a copy stored meanwhile is as unsure as the import
                self._where_in("UPDATE tasks SET state = 1 WHERE key", [t.key for t in tasks])
            for t in tasks:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO tasks (key, project_id, size, state, created, attempts)"
                    " SELECT ?, ?, ?, ?, ?, ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM delivered WHERE key = ?)"
                    " AND NOT EXISTS (SELECT 1 FROM dead_letter WHERE key = ?)",
                    (t.key, t.project_id, len(t.payload), state, t.created, attempts, t.key, t.key),
                )
                if cursor.rowcount:
                    self._db.execute(
                        "INSERT INTO task_payloads (seq, payload) VALUES (?, ?)",
                        (cursor.lastrowid, t.payload),
                    )
                    stored += 1
                    added += len(t.payload)
            if held:
                self._drop_marks([t.key for t in tasks])
            freed = self._forget_rows(consumed, consumed_spans)
        self._adjust_bytes(added - freed)
        return stored

    def claim(self, tasks: Sequence[SpooledTask]) -> list[SpooledTask]:
        """Before tasks held in memory (of one project) are imported: those whose span is
        already stored, delivered or dead-lettered, or comes twice, are dropped and their
        records forgotten; the keys of the rest are committed to `in_flight`, in one
        transaction. Returns the rest."""
        keys = [t.key for t in tasks]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            known: set[str] = set()
            for marks, chunk in _in_chunks(keys, 300):  # three lists of parameters each
                known.update(
                    key
                    for (key,) in self._db.execute(
                        # Only "?" placeholders are formatted in.
                        f"SELECT key FROM delivered WHERE key IN ({marks})"  # noqa: S608
                        f" UNION ALL SELECT key FROM tasks WHERE key IN ({marks})"
                        f" UNION ALL SELECT key FROM dead_letter WHERE key IN ({marks})",
                        (*chunk, *chunk, *chunk),
                    )
                )
            fresh: list[SpooledTask] = []
            dropped: list[SpooledTask] = []
            for t in tasks:
                if t.key in known:
                    dropped.append(t)
                else:
                    known.add(t.key)
                    fresh.append(t)
            self._db.executemany(
                "INSERT OR REPLACE INTO in_flight (key, project_id) VALUES (?, ?)",
                [(t.key, t.project_id) for t in fresh],
            )
            freed = self._forget_rows(
                [row for t in dropped for row in t.rows], sum(t.spans for t in dropped)
            )
        self._adjust_bytes(-freed)
        return fresh

    def _drop_marks(self, keys: Sequence[str]) -> None:
        self._where_in("DELETE FROM in_flight WHERE key", keys)

    def _where_in(self, statement: str, values: Sequence[Any]) -> None:
        """`statement` ("DELETE FROM ... WHERE column", "UPDATE ... WHERE column") on the rows
        whose column is one of `values`, in chunks (as `_sum_where_in`)."""
        for marks, chunk in _in_chunks(values):
            self._db.execute(f"{statement} IN ({marks})", chunk)

    def ready_count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM tasks WHERE state = 0")

    def counts(self) -> dict[str, int]:
        """records: spans and events in the inbox not yet done with (spans: the spans among
        them)."""
        with self._lock:
            if self._closed_counts is not None:
                return dict(self._closed_counts)
            row = self._db.execute(
                "SELECT (SELECT COALESCE(SUM(records), 0) FROM inbox),"
                " (SELECT COALESCE(SUM(spans), 0) FROM inbox),"
                " (SELECT COUNT(*) FROM tasks WHERE state = 0),"
                " (SELECT COUNT(*) FROM tasks WHERE state = 1),"
                " (SELECT COUNT(*) FROM dead_letter)"
            ).fetchone()
        records, spans, *rest = (int(v) for v in row)
        counted = (records - self._open_done[0], spans - self._open_done[1], *rest)
        names = ("records", "spans", "ready", "in_flight", "dead_letter")
        return dict(zip(names, counted, strict=True))

    def oldest_ready(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created FROM tasks WHERE state = 0 ORDER BY seq LIMIT 1"
            ).fetchone()
        return float(row[0]) if row else None

    def next_batch(
        self, limit: int, *, partial_if_created_by: float | None = None
    ) -> list[SpooledTask]:
        """The oldest ready task and the ready tasks of the same project after it, up to
        `limit`. With `partial_if_created_by`, a batch short of `limit` comes back only if its
        oldest task was created by then (its linger is over); else none, found out without
        reading a payload."""
        with self._lock:
            first = self._db.execute(
                "SELECT project_id, created FROM tasks WHERE state = 0 ORDER BY seq LIMIT 1"
            ).fetchone()
            if first is None:
                return []
            project_id, created = first
            if partial_if_created_by is not None and created > partial_if_created_by:
                ready = self._db.execute(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM tasks"
                    " WHERE state = 0 AND project_id = ? LIMIT ?)",
                    (project_id, limit),
                ).fetchone()[0]
                if ready < limit:
                    return []
            rows = self._db.execute(
                "SELECT key, project_id, payload, created FROM tasks NATURAL JOIN task_payloads"
                " WHERE state = 0 AND project_id = ? ORDER BY seq LIMIT ?",
                (project_id, limit),
            ).fetchall()
        return [SpooledTask(*row) for row in rows]

    def in_flight(self) -> list[SpooledTask]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, project_id, payload, created FROM tasks NATURAL JOIN task_payloads"
                " WHERE state = 1 ORDER BY seq"
            ).fetchall()
        return [SpooledTask(*row) for row in rows]

    def unsure(self) -> list[tuple[str, int]]:
        """(key, project id) of every import whose outcome is unknown: stored tasks in flight,
        and the `in_flight` marks of tasks imported from memory."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, project_id FROM tasks WHERE state = 1"
                " UNION SELECT key, project_id FROM in_flight"
            ).fetchall()
        return [(str(key), int(project_id)) for key, project_id in rows]

    def mark_in_flight(self, keys: Sequence[str]) -> None:
        """Committed before the import is sent: after a crash, these are checked in Label
        Studio before they are imported again."""
        self._set_state(keys, IN_FLIGHT, attempt=True)

    def mark_ready(self, keys: Sequence[str]) -> None:
        """Not imported after all: stored tasks are ready again, the `in_flight` marks of tasks
        imported from memory go (their inbox records make them again)."""
        self._set_state(keys, READY, attempt=False, drop_marks=True)

    def _set_state(
        self, keys: Sequence[str], state: int, *, attempt: bool, drop_marks: bool = False
    ) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE tasks SET state = ?, attempts = attempts + ? WHERE key = ?",
                [(state, int(attempt), k) for k in keys],
            )
            if drop_marks:
                self._drop_marks(keys)

    def mark_delivered(
        self,
        delivered: Mapping[str, int | None],
        project_id: int,
        held: Sequence[SpooledTask] = (),
    ) -> None:
        """Label Studio has these (span key → its task id, when known): ledger them and drop
        their tasks and `in_flight` marks, in one transaction. `held`: the tasks, imported from
        memory, whose records are now forgotten. (A copy of one of them stored meanwhile, the
        same span sent again while it was in flight, goes with them.)"""
        now = self.clock()
        keys = list(delivered)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO delivered (key, project_id, task_id, at) VALUES (?,?,?,?)",
                [(k, project_id, tid, now) for k, tid in delivered.items()],
            )
            freed = self._task_bytes([(k,) for k in keys])
            if freed:
                self._where_in("DELETE FROM tasks WHERE key", keys)
            self._drop_marks(keys)
            if held:
                freed += self._forget_rows(
                    [row for t in held for row in t.rows], sum(t.spans for t in held)
                )
        self._adjust_bytes(-freed)

    def _task_bytes(self, keys: Sequence[tuple[str]]) -> int:
        return self._sum_where_in("SELECT SUM(size) FROM tasks WHERE key", [k for (k,) in keys])

    def _sum_where_in(self, select: str, values: Sequence[Any]) -> int:
        """`select` ("SELECT SUM(...) FROM ... WHERE column") over the rows whose column is one
        of `values`, in chunks that stay under SQLite's limit on parameters."""
        total = 0
        for marks, chunk in _in_chunks(values):
            row = self._db.execute(f"{select} IN ({marks})", chunk).fetchone()
            total += int(row[0] or 0)
        return total

    def is_delivered(self, key: str) -> bool:
        return bool(self._scalar("SELECT COUNT(*) FROM delivered WHERE key = ?", (key,)))

    def delivered_count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM delivered")

    def prune_ledger(self, ttl_s: float = LEDGER_TTL_S) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM delivered WHERE at < ?", (self.clock() - ttl_s,))

    # ---- dead letters ----------------------------------------------------------------------

    def dead_letter(self, key: str, reason: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            freed = self._task_bytes([(key,)])
            self._db.execute(
                "INSERT OR REPLACE INTO dead_letter (key, project_id, payload, reason, at)"
                " SELECT key, project_id, payload, ?, ? FROM tasks NATURAL JOIN task_payloads"
                " WHERE key = ?",
                (reason, self.clock(), key),
            )
            self._db.execute("DELETE FROM tasks WHERE key = ?", (key,))
        self._adjust_bytes(-freed)

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, project_id, reason, at, payload FROM dead_letter ORDER BY at LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def redrive(self, keys: Sequence[str] | None = None) -> int:
        """Send dead letters (all, or those of `keys`) back to be imported; returns how many."""
        now = self.clock()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            rows = self._dead_rows(keys)
            for key, project_id, payload in rows:
                cursor = self._db.execute(
                    "INSERT OR REPLACE INTO tasks (key, project_id, size, created)"
                    " VALUES (?, ?, ?, ?)",
                    (key, project_id, len(payload), now),
                )
                self._db.execute(
                    "INSERT INTO task_payloads (seq, payload) VALUES (?, ?)",
                    (cursor.lastrowid, payload),
                )
            self._db.executemany("DELETE FROM dead_letter WHERE key = ?", [(r[0],) for r in rows])
        self._adjust_bytes(sum(len(payload) for _, _, payload in rows))
        return len(rows)

    def purge_dead_letters(self, keys: Sequence[str] | None = None) -> int:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            rows = self._dead_rows(keys)
            self._db.executemany("DELETE FROM dead_letter WHERE key = ?", [(r[0],) for r in rows])
        return len(rows)

    def _dead_rows(self, keys: Sequence[str] | None) -> list[tuple[str, int, str]]:
        select = "SELECT key, project_id, payload FROM dead_letter"
        if keys is None:
            return list(self._db.execute(select).fetchall())
        found: list[tuple[str, int, str]] = []
        for key in keys:
            found.extend(self._db.execute(f"{select} WHERE key = ?", (key,)).fetchall())
        return found


def encode_task(payload: Mapping[str, Any]) -> str:
    """A task as the import request carries it. Values JSON cannot hold (bytes from a binary
    attribute, sets) become readable text rather than an error; NaN and infinities, which
    strict JSON parsers refuse, become null.

    orjson writes a 2 KB task in ~1 µs where the standard library takes ~10 (a tenth of an
    interaction's whole budget in `serve`); what orjson refuses (integers beyond 64 bits, nesting
    deeper than 254, lone surrogates) takes the standard library's path."""
    try:
        return orjson.dumps(payload, default=_readable, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        pass
    try:
        return json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_readable
        )
    except ValueError:  # NaN or infinity somewhere: rare, so the slow path is fine
        return json.dumps(
            _finite(payload), ensure_ascii=False, separators=(",", ":"), default=_readable
        )


def _readable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>" if len(value) > 64 else value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _decode(kind: int, body: bytes) -> Sequence[Record]:
    if kind == PICKLED_RECORDS:
        return pickle.loads(body)  # type: ignore[no-any-return]  # noqa: S301 (see the docstring)
    if kind in (OTLP_TRACES, OTLP_LOGS):
        from otel_labelstudio.receiver.otlp import decode_genai  # protobuf: the service's

        return decode_genai(kind == OTLP_TRACES, body)
    if kind == PICKLED_RECORD:
        return [pickle.loads(body)]  # noqa: S301
    raise ValueError(f"unknown inbox row kind {kind}")


def _in_chunks(values: Sequence[Any], size: int = 500) -> Iterable[tuple[str, Sequence[Any]]]:
    """`values` in chunks that stay under SQLite's limit on parameters, each with its
    placeholders ("?,?,?") for an `IN (...)`."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield ",".join("?" * len(chunk)), chunk
