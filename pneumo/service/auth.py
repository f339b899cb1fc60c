"""Optional sign-in for a shared deployment. Off unless PNEUMO_USERS_FILE names a users file.

The file is written by an administrator with `python -m pneumo users add-user NAME [--admin]`
(the password is read from the terminal, or from stdin's first line when piped). One user a
line, fields separated by single spaces:

    alice user scrypt$16384$8$1$<salt, base64>$<hash, base64>
    bob admin scrypt$...

'#' starts a comment line. The salt is random per user; scrypt makes each guess cost ~50 ms
and 16 MB. Checking a password always does the same work and the same constant-time
comparison, whether or not the user exists, and the refusal never says which part was wrong.
No streamlit import here: app.py draws the form.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, MutableMapping

from pneumo import config
from pneumo.errors import PneumoError

ROLES = ("user", "admin")
SESSION_USER, SESSION_ROLE = "user", "user_role"      # st.session_state keys
REFUSAL = "Wrong user name or password."
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")   # the case log's rule too
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_N, _R, _P, _SALT, _LEN = 2 ** 14, 8, 1, 16, 32


class AuthError(PneumoError):
    """A users file or a user entry that cannot be used (one line)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# --- hashing ------------------------------------------------------------------------------

def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=256 * 1024 * 1024)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """'scrypt$N$r$p$salt$hash' with a fresh 16-byte random salt."""
    salt = secrets.token_bytes(_SALT) if salt is None else salt
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(_scrypt(password, salt, _N, _R, _P, _LEN))])


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    kind, n, r, p, salt, digest = stored.split("$")
    n, r, p = int(n), int(r), int(p)
    if kind != "scrypt" or not (2 ** 10 <= n <= 2 ** 20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("unsupported hash parameters")
    return n, r, p, base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)


_DUMMY = hash_password(secrets.token_urlsafe(16))   # checked against when the user does not exist


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored`; the comparison is constant-time."""
    try:
        n, r, p, salt, digest = _parse_hash(stored)
    except (ValueError, TypeError):
        n, r, p, salt, digest = _parse_hash(_DUMMY)
        stored = ""
    candidate = _scrypt(password[:MAX_PASSWORD], salt, n, r, p, len(digest))
    return hmac.compare_digest(candidate, digest) and bool(stored)


# --- the users file -----------------------------------------------------------------------

def parse_users(text: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(" ")
        if len(parts) != 3 or not NAME.match(parts[0]) or parts[1] not in ROLES:
            raise AuthError(f"users file line {number}: expected 'NAME user|admin HASH'")
        try:
            _parse_hash(parts[2])
        except (ValueError, TypeError):
            raise AuthError(f"users file line {number}: not a pneumo password hash") from None
        if parts[0] in users:
            raise AuthError(f"users file line {number}: {parts[0]} is listed twice")
        users[parts[0]] = User(*parts)
    return users


def load_users(path: str | os.PathLike | None = None) -> dict[str, User]:
    """The users in `path` (default PNEUMO_USERS_FILE). AuthError when it cannot be read: the
    app then lets nobody in (fail closed)."""
    path = Path(path) if path is not None else config.users_file()
    if path is None:
        raise AuthError("no users file configured (PNEUMO_USERS_FILE)")
    try:
        return parse_users(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise AuthError(f"cannot read the users file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise AuthError("the users file is not UTF-8 text") from None


def required() -> bool:
    """Sign-in is on when PNEUMO_USERS_FILE is set (even if the file is missing: fail closed)."""
    return config.users_file() is not None


def authenticate(name: str, password: str, users: Mapping[str, User] | None = None) -> User | None:
    """The user when name and password match, else None; the same work either way."""
    users = load_users() if users is None else users
    user = users.get(name) if isinstance(name, str) else None
    ok = verify_password(password if isinstance(password, str) else "",
                         user.password_hash if user is not None else _DUMMY)
    return user if ok and user is not None else None


def sign_in(session: MutableMapping, user: User) -> None:
    """Start `user`'s session from nothing: whatever the tab held before (another user's batch,
    films, results) is dropped first."""
    session.clear()
    session[SESSION_USER], session[SESSION_ROLE] = user.name, user.role


def sign_out(session: MutableMapping) -> None:
    """Forget everything this session held, not only who it was: the next user of the tab must
    not find the last one's tables, films or downloads."""
    session.clear()


def current_user(session: Mapping) -> str | None:
    """The signed-in name (None without sign-in or before it). A user removed from, or demoted in,
    the users file loses the session on its next run."""
    if not required():
        return None
    name = session.get(SESSION_USER)
    if not name:
        return None
    try:
        user = load_users().get(name)
    except AuthError:
        user = None
    if user is None or user.role != session.get(SESSION_ROLE):
        if isinstance(session, MutableMapping):
            sign_out(session)
        return None
    return name


def allowed(session: Mapping) -> bool:
    """May this session see the pages? Always without sign-in, else only once signed in."""
    return not required() or current_user(session) is not None


def is_admin(session: Mapping) -> bool:
    return required() and current_user(session) is not None and session.get(SESSION_ROLE) == "admin"


def check_new_password(password: str) -> None:
    """AuthError unless `password` has MIN_PASSWORD to MAX_PASSWORD characters once the spaces
    around it are stripped (ten spaces, or a short word padded with them, is not a password)."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password.strip()) or len(password) > MAX_PASSWORD:
        raise AuthError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters, not counting "
                        "spaces at either end")


def _write_users(path: Path, lines: list[str]) -> None:
    """The users file, replaced atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-")   # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_user(path: str | os.PathLike, name: str) -> bool:
    """Delete `name`'s line from the users file (False when it was not there). Open sessions of
    that user end on their next run (current_user re-reads the file); the caller also revokes the
    user's sign-in cookies (pneumo.service.sessions)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    users = parse_users(text)
    if name not in users:
        return False
    _write_users(path, [raw for raw in text.splitlines()
                        if raw.strip().startswith("#") or raw.strip().split(" ")[0] != name])
    return True


def add_user(path: str | os.PathLike, name: str, password: str, *, admin: bool = False) -> bool:
    """Add `name` to the users file, or replace its line (returns True when it was new). The file
    is written atomically and readable by its owner only."""
    if not isinstance(name, str) or not NAME.match(name):
        raise AuthError("a user name is 1-64 letters, digits and . _ @ - (starting with a letter or digit)")
    check_new_password(password)
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    users = parse_users(text)
    line = f"{name} {'admin' if admin else 'user'} {hash_password(password)}"
    kept = [raw for raw in text.splitlines() if raw.strip().split(" ")[0] != name or raw.strip().startswith("#")]
    if not text:
        kept = ["# pneumo users: NAME user|admin HASH (python -m pneumo users add-user NAME [--admin])"]
    _write_users(path, kept + [line])
    return name not in users


def _read_password(prompt: str = "Password: ") -> str:
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise AuthError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")
