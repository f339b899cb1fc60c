"""Signed-in browsers and sign-in back-off, shared by every session and process of the app: one
SQLite file, PNEUMO_HOME/sessions.sqlite (mode 0600), each change in one locked transaction.

A sign-in is bound to a secret only the browser holds, never to Streamlit's session id (that id
travels in upload URLs, so in proxy logs, and replays on a raw websocket):
1. the password checks -> `issue_code(name, role)`: a one-time code, valid CODE_SECONDS, sent to
   that page only;
2. the page POSTs it to /api/pneumo/session (pneumo.service.web_routes) -> `redeem_code` returns a
   random token, set there as an HttpOnly, SameSite=Strict cookie; only its sha256 is stored;
3. every page run: `lookup(token from that cookie)` -> (name, role), or None when it is unknown,
   revoked, idle longer than PNEUMO_IDLE_MINUTES or older than PNEUMO_SESSION_HOURS.

Back-off: each sign-in attempt is counted against the user name typed and against the browser
session *before* the password is checked (so parallel tries cannot slip past a lock); after
PNEUMO_SIGN_IN_FREE_TRIES attempts, each key is locked 30, 60, 120 ... seconds (at most
PNEUMO_SIGN_IN_MAX_LOCK_S) after its last attempt, and a correct password clears it. Unknown and
known names are counted alike, so the lock says nothing about who exists.
"""
from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pneumo import config
from pneumo.errors import PneumoError

COOKIE = "pneumo_session"
CODE_SECONDS = 60
FIRST_LOCK_S = 30
FORGET_FAILURES_S = 24 * 3600      # a key with no attempt for a day starts again from zero
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (digest TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL,
                                   created REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS codes (digest TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL,
                                  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (key TEXT PRIMARY KEY, count INTEGER NOT NULL, last REAL NOT NULL);
"""


def digest(secret: str) -> str:
    """What the store keeps of a token or code: its sha256 (the secret itself never touches disk)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Tokens, one-time codes and attempt counters in one SQLite file (default
    PNEUMO_HOME/sessions.sqlite). Safe across threads and processes: each call opens its own
    connection and writes inside BEGIN IMMEDIATE."""

    def __init__(self, path: str | Path | None = None, *, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else config.home_dir() / "sessions.sqlite"
        self.clock = clock
        try:
            self.path.touch(mode=0o600, exist_ok=True)
            self.path.chmod(0o600)
            with closing(sqlite3.connect(self.path, timeout=10)) as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise PneumoError(f"cannot open the sign-in store {self.path}: {err}") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # --- sign-in: code -> token -> user --------------------------------------------------

    def issue_code(self, name: str, role: str) -> str:
        """A one-time code for a user whose password has just checked; the page redeems it."""
        code = secrets.token_urlsafe(32)
        with self._tx() as db:
            db.execute("DELETE FROM codes WHERE created < ?", (self.clock() - CODE_SECONDS,))
            db.execute("INSERT INTO codes VALUES (?, ?, ?, ?)", (digest(code), name, role, self.clock()))
        return code

    def redeem_code(self, code: str) -> str | None:
        """The browser's token for a fresh, unused code (the code is spent either way), else None."""
        if not isinstance(code, str) or not 16 <= len(code) <= 128:
            return None
        token = secrets.token_urlsafe(32)
        with self._tx() as db:
            row = db.execute("SELECT user, role, created FROM codes WHERE digest = ?", (digest(code),)).fetchone()
            db.execute("DELETE FROM codes WHERE digest = ?", (digest(code),))
            if row is None or row[2] < self.clock() - CODE_SECONDS:
                return None
            now = self.clock()
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?)", (digest(token), row[0], row[1], now, now))
        return token

    def lookup(self, token: str | None, *, touch: bool = True) -> tuple[str, str] | None:
        """(name, role) for a live token, else None; `touch` counts this as activity."""
        if not isinstance(token, str) or not token or len(token) > 128:
            return None
        now = self.clock()
        idle, longest = config.idle_minutes() * 60, config.session_hours() * 3600
        with self._tx() as db:
            db.execute("DELETE FROM tokens WHERE last_seen < ? OR created < ?", (now - idle, now - longest))
            row = db.execute("SELECT user, role FROM tokens WHERE digest = ?", (digest(token),)).fetchone()
            if row is not None and touch:
                db.execute("UPDATE tokens SET last_seen = ? WHERE digest = ?", (now, digest(token)))
        return (row[0], row[1]) if row else None

    def revoke(self, token: str | None) -> None:
        """Sign this browser out everywhere its cookie goes (the cookie becomes worthless)."""
        if isinstance(token, str) and token:
            with self._tx() as db:
                db.execute("DELETE FROM tokens WHERE digest = ?", (digest(token),))

    def revoke_user(self, name: str) -> int:
        """Sign every browser of `name` out (a removed user); returns how many were signed in."""
        with self._tx() as db:
            db.execute("DELETE FROM codes WHERE user = ?", (name,))
            return db.execute("DELETE FROM tokens WHERE user = ?", (name,)).rowcount

    # --- back-off ------------------------------------------------------------------------

    @staticmethod
    def _lock_seconds(count: int) -> float:
        over = count - config.sign_in_free_tries()
        return 0.0 if over < 0 else float(min(FIRST_LOCK_S * 2 ** min(over, 20), config.sign_in_max_lock_seconds()))

    def begin_attempt(self, keys: Iterable[str]) -> float:
        """0 and the attempt counted against every key when none is locked; else the seconds to
        wait (nothing counted, no password may be checked)."""
        keys = sorted(set(keys))
        now = self.clock()
        with self._tx() as db:
            db.execute("DELETE FROM attempts WHERE last < ?", (now - FORGET_FAILURES_S,))
            wait = 0.0
            for key in keys:
                row = db.execute("SELECT count, last FROM attempts WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    wait = max(wait, row[1] + self._lock_seconds(row[0]) - now)
            if wait > 0:
                return wait
            for key in keys:
                db.execute("INSERT INTO attempts VALUES (?, 1, ?) ON CONFLICT(key) DO UPDATE "
                           "SET count = count + 1, last = excluded.last", (key, now))
        return 0.0

    def succeeded(self, keys: Iterable[str]) -> None:
        """The password checked: these keys start again from zero."""
        with self._tx() as db:
            db.executemany("DELETE FROM attempts WHERE key = ?", [(k,) for k in set(keys)])


def attempt_keys(name: str, session_id: str | None) -> list[str]:
    """What one sign-in attempt is counted against: the user name typed and the browser session."""
    keys = ["user:" + (name or "")[:128]]
    return keys + (["session:" + session_id] if session_id else [])
