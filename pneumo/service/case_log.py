"""The case log: one SQLite row per scored case, shared by the app, the CLI and batches.

What is stored is what the model saw and said (pixel digest, lab values, probability,
threshold, band, validity, warnings, model identity) and never who the patient is: no name,
ID, birth date, accession number, file name or path. Every write opens its own short-lived
connection in WAL mode with a busy timeout, so app sessions (threads) and a CLI batch
(another process) can write at once without losing a row.

With sign-in configured (pneumo.service.auth) each row also names the staff user who scored it, so a
user's History shows their own cases. The file is created readable by its owner only (0600);
PNEUMO_RETENTION_DAYS deletes older rows whenever the log is opened, and
`python -m pneumo history --purge-before YYYY-MM-DD` deletes them on demand.

What a row may hold (the cleaning) is pneumo.service.case_record; this module is the file's
format: schema, migrations, writes and queries.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from contextlib import closing, contextmanager
from dataclasses import is_dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.service.case_record import (COLUMNS, ORIGINS, LogEntry, clean_user, clean_warnings,
                                        row_values, utc_stamp)
from pneumo.service.csv_safe import write_safe_csv

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 10_000

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS cases (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    time            TEXT NOT NULL,              -- UTC ISO 8601
    origin          TEXT NOT NULL CHECK (origin IN ('app', 'cli', 'batch')),
    image_digest    TEXT,                       -- sha256 of the pixels, never a file name
    labs            TEXT NOT NULL,              -- JSON {panel key: value | null}
    probability     REAL NOT NULL,
    label           TEXT NOT NULL,
    threshold       REAL,
    band            TEXT,
    validity        TEXT,
    warnings        TEXT NOT NULL,              -- JSON list of plain-word warnings
    contribution    TEXT,                       -- JSON {image, labs}
    model_name      TEXT,
    model_version   TEXT,
    weights_sha256  TEXT,
    batch_id        TEXT,
    row_index       INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_batch_row ON cases (batch_id, row_index);
CREATE INDEX IF NOT EXISTS cases_time ON cases (time);
"""

_V4_CASES = ("id, time, origin, image_digest, labs, probability, label, threshold, band, validity, warnings, "
             "contribution, model_name, model_version, weights_sha256, batch_id, row_index, user, intended_use, "
             "inputs, outside_allowed")

# Each step takes the log from version i to i + 1; a new file runs them all.
# 2: `user`, the signed-in staff user (pneumo.service.auth) who scored the case, NULL without sign-in.
_MIGRATIONS = {
    0: _SCHEMA_V1,
    1: """
ALTER TABLE cases ADD COLUMN user TEXT;
CREATE INDEX IF NOT EXISTS cases_user ON cases (user);
""",
    # 3: the intended-use verdict and which inputs a case had; refused cases (the reason only)
    2: """
ALTER TABLE cases ADD COLUMN intended_use TEXT;
ALTER TABLE cases ADD COLUMN inputs TEXT;
CREATE TABLE IF NOT EXISTS refusals (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    TEXT NOT NULL,
    origin  TEXT NOT NULL CHECK (origin IN ('app', 'cli', 'batch')),
    reason  TEXT NOT NULL,
    user    TEXT
);
CREATE INDEX IF NOT EXISTS refusals_time ON refusals (time);
""",
    # 4: whether the user asked to see this outside-the-intended-use case anyway (1) or not (0).
    # Older rows never recorded the request, so they count as not asked: an outside row's label,
    # stored by the app before its gate, is cleared (pneumo.inference.disclosure: no label unless asked).
    3: """
ALTER TABLE cases ADD COLUMN outside_allowed INTEGER NOT NULL DEFAULT 0;
UPDATE cases SET label = '' WHERE intended_use = 'outside';
""",
    # 5: 'dicom-node' is an origin of its own (the node logged as 'batch', under a batch id
    # 'dicom-node-...', which tells its old rows apart; its old refusals carry no batch id and stay
    # 'batch'). SQLite cannot alter a CHECK: both tables are rebuilt, ids and indexes kept.
    4: f"""
CREATE TABLE cases_v5 (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('app', 'cli', 'batch', 'dicom-node')),
    image_digest TEXT, labs TEXT NOT NULL, probability REAL NOT NULL, label TEXT NOT NULL, threshold REAL,
    band TEXT, validity TEXT, warnings TEXT NOT NULL, contribution TEXT, model_name TEXT, model_version TEXT,
    weights_sha256 TEXT, batch_id TEXT, row_index INTEGER, user TEXT, intended_use TEXT, inputs TEXT,
    outside_allowed INTEGER NOT NULL DEFAULT 0
);
INSERT INTO cases_v5 ({_V4_CASES}) SELECT {_V4_CASES} FROM cases;
DROP TABLE cases;
ALTER TABLE cases_v5 RENAME TO cases;
CREATE UNIQUE INDEX IF NOT EXISTS cases_batch_row ON cases (batch_id, row_index);
CREATE INDEX IF NOT EXISTS cases_time ON cases (time);
CREATE INDEX IF NOT EXISTS cases_user ON cases (user);
UPDATE cases SET origin = 'dicom-node' WHERE origin = 'batch' AND batch_id LIKE 'dicom-node-%';
CREATE TABLE refusals_v5 (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('app', 'cli', 'batch', 'dicom-node')),
    reason TEXT NOT NULL, user TEXT
);
INSERT INTO refusals_v5 (id, time, origin, reason, user) SELECT id, time, origin, reason, user FROM refusals;
DROP TABLE refusals;
ALTER TABLE refusals_v5 RENAME TO refusals;
CREATE INDEX IF NOT EXISTS refusals_time ON refusals (time);
""",
}

# A batch row scored again after a kill replaces its first record instead of adding a second.
_INSERT = (f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
           "ON CONFLICT (batch_id, row_index) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in ("batch_id", "row_index")))


class CaseLogLocked(PneumoError):
    """Another writer held the log past the busy timeout: worth trying again (a batch does, with
    back-off: pneumo.service.batch), unlike a full disk or a file that cannot be opened."""


def _is_locked(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(err).lower()
    return "locked" in text or "busy" in text


@contextmanager
def _write_transaction(conn):
    """BEGIN IMMEDIATE takes the write lock up front (waits, never deadlocks); all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class CaseLog:
    """The case log at `path` (default config.home_dir()/"cases.sqlite"). `user`: the signed-in
    name recorded with every case this object writes, unless a call names another.
    `retention_days` (default config.retention_days()): older rows are deleted on opening."""

    def __init__(self, path: str | os.PathLike | None = None, *, user: str | None = None,
                 retention_days: int | None = None):
        self.path = Path(path) if path is not None else config.home_dir() / "cases.sqlite"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PneumoError(f"cannot create the case log's folder {self.path.parent}: "
                              f"{err.strerror or type(err).__name__}") from None
        self.user = clean_user(user)
        self._create_private()
        self._init_schema()
        self._restrict()
        days = config.retention_days() if retention_days is None else retention_days
        if days:
            self.purge_before(datetime.now(timezone.utc) - timedelta(days=int(days)))

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as err:
            raise PneumoError(f"cannot open the case log: {err}") from None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _init_schema(self) -> None:
        try:
            with closing(self._connect()) as conn:
                # WAL is a property of the file: set once, every later connection gets it.
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise PneumoError(f"the case log was written by a newer pneumo (schema {version}, "
                                      f"this one reads {SCHEMA_VERSION})")
                if version < SCHEMA_VERSION:
                    with _write_transaction(conn):
                        # read again under the write lock: another process may have migrated it
                        version = conn.execute("PRAGMA user_version").fetchone()[0]
                        for step in range(version, SCHEMA_VERSION):
                            for stmt in filter(str.strip, _MIGRATIONS[step].split(";")):
                                conn.execute(stmt)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as err:
            raise PneumoError(f"cannot open the case log: {err}") from None

    def _create_private(self) -> None:
        """Create the file 0600 before SQLite does (SQLite gives its -wal and -shm the same mode)."""
        if os.name == "posix" and not self.path.exists():
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as err:
                raise PneumoError(f"cannot create the case log: {err.strerror}") from None

    def _restrict(self) -> None:
        """Clinical values: readable by this user only, also for a log made by an older pneumo."""
        if os.name != "posix":
            return
        for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            try:
                if p.exists() and p.stat().st_mode & 0o077 and p.stat().st_uid == os.getuid():
                    p.chmod(0o600)
            except OSError:
                pass

    # -- writing -------------------------------------------------------------------------
    def record(self, result: Any, *, labs: Any = None, origin: str, batch_id: str | None = None,
               row_index: int | None = None, user: str | None = None) -> int:
        """Store one scored case; returns its row id. `labs`: panel key -> value, or a LabReading.
        `user`: who scored it (default: this log's user; None without sign-in)."""
        return self.record_many([LogEntry(result, labs, origin, batch_id, row_index, user)])[0]

    def record_many(self, entries: Iterable[LogEntry]) -> list[int]:
        """Store several cases in one transaction (all or none); returns their row ids."""
        rows = [row_values(e if e.user is not None or self.user is None
                            else LogEntry(e.result, e.labs, e.origin, e.batch_id, e.row_index, self.user))
                for e in entries]
        if not rows:
            return []
        try:
            with closing(self._connect()) as conn, _write_transaction(conn):
                ids = [conn.execute(_INSERT + " RETURNING id", row).fetchone()[0] for row in rows]
        except sqlite3.Error as err:
            kind = CaseLogLocked if _is_locked(err) else PneumoError
            raise kind(f"cannot write the case log: {err}") from None
        return ids

    def update(self, row_id: int, result: Any, *, labs: Any = None) -> None:
        """Replace what a logged case holds by its newer answer (the page: the same film, its labs
        or age changed), so one case is one row; time, origin, user and batch stay the first ones."""
        row = row_values(LogEntry(result, labs, "app"))
        kept = ("time", "origin", "user", "batch_id", "row_index")
        cols = [c for c in COLUMNS if c not in kept]
        values = [row[COLUMNS.index(c)] for c in cols]
        try:
            with closing(self._connect()) as conn, _write_transaction(conn):
                conn.execute(f"UPDATE cases SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
                             (*values, int(row_id)))
        except sqlite3.Error as err:
            kind = CaseLogLocked if _is_locked(err) else PneumoError
            raise kind(f"cannot write the case log: {err}") from None

    def record_outside_request(self, row_id: int, result: Any) -> None:
        """The user asked, after the case was logged, to see this outside case anyway (the page's
        per-case "show the number anyway"): the request and the label the rule then gives are stored."""
        row = row_values(LogEntry(replace(result, outside_allowed=True) if is_dataclass(result)
                                  else {**result, "outside_allowed": True}, origin="app"))
        label, allowed = row[COLUMNS.index("label")], row[COLUMNS.index("outside_allowed")]
        try:
            with closing(self._connect()) as conn, _write_transaction(conn):
                conn.execute("UPDATE cases SET label = ?, outside_allowed = ? WHERE id = ? AND intended_use = 'outside'",
                             (label, allowed, int(row_id)))
        except sqlite3.Error as err:
            raise PneumoError(f"cannot write the case log: {err}") from None

    def record_refusal(self, reason: str, *, origin: str, user: str | None = None) -> int:
        """Store that a case was refused, with the one-line reason (file names masked) and no
        pixels or values; returns its row id."""
        if origin not in ORIGINS:
            raise PneumoError(f"case log: origin must be one of {', '.join(ORIGINS)}, not {origin!r}")
        text = (clean_warnings([reason]) or [""])[0][:300]
        row = (datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               origin, text, clean_user(user if user is not None else self.user))
        try:
            with closing(self._connect()) as conn, _write_transaction(conn):
                return conn.execute("INSERT INTO refusals (time, origin, reason, user) VALUES (?, ?, ?, ?) "
                                    "RETURNING id", row).fetchone()[0]
        except sqlite3.Error as err:
            raise PneumoError(f"cannot write the case log: {err}") from None

    # -- reading -------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        try:
            with closing(self._connect()) as conn:
                return pd.read_sql_query(sql, conn, params=params)
        except (sqlite3.Error, pd.errors.DatabaseError) as err:
            raise PneumoError(f"cannot read the case log: {err}") from None

    def recent(self, limit: int = 200, *, user: str | None = None) -> pd.DataFrame:
        """The newest `limit` cases, newest first; labs/warnings/contribution decoded from JSON.
        `user`: only the cases that user scored."""
        where, params = ("", (int(limit),)) if user is None else ("WHERE user = ? ", (clean_user(user), int(limit)))
        frame = self._query(f"SELECT * FROM cases {where}ORDER BY id DESC LIMIT ?", params)
        refused = self._query(f"SELECT time, origin, reason, user FROM refusals {where}ORDER BY id DESC LIMIT ?",
                              params)
        for col in ("labs", "warnings", "contribution"):
            frame[col] = frame[col].astype(object).map(lambda s: json.loads(s) if isinstance(s, str) else None)
        frame["outcome"] = "scored"
        if len(refused):
            refused = refused.assign(outcome="refused", warnings=[[r] for r in refused.pop("reason")])
            frame = pd.concat([frame.astype(object), refused.astype(object)], ignore_index=True)
            frame = frame.sort_values("time", ascending=False, kind="stable").head(int(limit)).reset_index(drop=True)
        frame["user"] = pd.Series([u if isinstance(u, str) else None for u in frame["user"]],
                                  index=frame.index, dtype=object)
        return frame

    def count(self, *, batch_id: str | None = None) -> int:
        sql, params = ("SELECT COUNT(*) AS n FROM cases", ())
        if batch_id is not None:
            sql, params = sql + " WHERE batch_id = ?", (batch_id,)
        return int(self._query(sql, params)["n"].iloc[0])

    def batch_rows(self, batch_id: str) -> set[int]:
        """Row indices already logged for a batch (resume uses this)."""
        frame = self._query("SELECT row_index FROM cases WHERE batch_id = ?", (batch_id,))
        return {int(x) for x in frame["row_index"].dropna()}

    def purge_before(self, moment: date | datetime | str) -> int:
        """Delete every case logged before `moment` (a date means its 00:00 UTC; 'YYYY-MM-DD'
        accepted); returns the number of rows removed. Deleted pages are zeroed on disk."""
        stamp = utc_stamp(moment)
        try:
            with closing(self._connect()) as conn:
                if conn.execute("SELECT 1 FROM cases WHERE time < ? UNION ALL SELECT 1 FROM refusals "
                                "WHERE time < ? LIMIT 1", (stamp, stamp)).fetchone() is None:
                    return 0                    # nothing to do: take no write lock
                conn.execute("PRAGMA secure_delete = ON")
                with _write_transaction(conn):
                    removed = conn.execute("DELETE FROM cases WHERE time < ?", (stamp,)).rowcount
                    removed += conn.execute("DELETE FROM refusals WHERE time < ?", (stamp,)).rowcount
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # the WAL holds the old pages too
        except sqlite3.Error as err:
            raise PneumoError(f"cannot purge the case log: {err}") from None
        return int(removed)

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write the whole log as CSV (formula-safe cells); returns the number of rows."""
        frame = self._query("SELECT * FROM cases ORDER BY id")
        write_safe_csv(frame, path)
        return len(frame)


def record_or_warn(result: Any, *, labs: Any = None, origin: str, user: str | None = None,
                   log: "CaseLog | None" = None, stream=None) -> bool:
    """Log one case, or, when the log cannot be opened or written (PNEUMO_HOME unwritable, disk
    full), say so in one line on stderr and go on: the answer matters more than its record."""
    try:
        (log or CaseLog(user=user)).record(result, labs=labs, origin=origin)
        return True
    except (PneumoError, OSError, sqlite3.Error) as err:
        warn_not_logged(err, "this case was not logged", stream)
        return False


def record_refusal_or_warn(reason: str, *, origin: str, user: str | None = None, stream=None) -> bool:
    """Log a refused case (its reason only), or say in one line that it was not logged."""
    try:
        CaseLog(user=user).record_refusal(reason, origin=origin)
        return True
    except (PneumoError, OSError, sqlite3.Error) as err:
        warn_not_logged(err, "this refusal was not logged", stream)
        return False


def warn_not_logged(err: BaseException, what: str, stream=None) -> None:
    """`warning: <what>: <reason>` as one line on stderr."""
    # a PneumoError's line or an OS reason; any other error by its type (its text may quote a value)
    reason = str(err) if isinstance(err, PneumoError) else (getattr(err, "strerror", None) or type(err).__name__)
    print(f"warning: {what}: {' '.join(str(reason).split())[:300]}", file=stream or sys.stderr)
