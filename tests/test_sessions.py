"""Sign-in sessions without a browser (issue 28): the cookie-token store (one-time codes, idle and
absolute expiry, revocation), the sign-in back-off shared between sessions, passwords that are
only spaces, `users remove-user`, sign-out emptying the session, and clear_cache not multiplying
the model. The browser-level attacks are tests/e2e/test_browser_sessions.py."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from pneumo import config
from pneumo.service import auth
from pneumo.service.sessions import CODE_SECONDS, FIRST_LOCK_S, SessionStore, attempt_keys

PASSWORD = "a long enough secret"


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    clock = Clock()
    return SessionStore(clock=clock), clock


# --- the cookie's token -----------------------------------------------------------------------

def test_a_code_is_spent_once_and_only_while_fresh(store):
    s, clock = store
    code = s.issue_code("alice", "user")
    token = s.redeem_code(code)
    assert token and s.lookup(token) == ("alice", "user")
    assert s.redeem_code(code) is None                       # replayed (e.g. from a log): nothing
    late = s.issue_code("alice", "user")
    clock.now += CODE_SECONDS + 1
    assert s.redeem_code(late) is None
    assert s.redeem_code("x" * 40) is None and s.redeem_code(None) is None
    assert s.lookup(None) is None and s.lookup("") is None and s.lookup("guess" * 8) is None


def test_only_digests_reach_the_disk(store):
    s, _ = store
    token = s.redeem_code(s.issue_code("alice", "user"))
    code = s.issue_code("bob", "admin")
    raw = s.path.read_bytes()
    assert token.encode() not in raw and code.encode() not in raw
    assert oct(s.path.stat().st_mode & 0o777) == "0o600"


def test_idle_and_absolute_expiry(store, monkeypatch):
    s, clock = store
    monkeypatch.setenv("PNEUMO_IDLE_MINUTES", "30")
    monkeypatch.setenv("PNEUMO_SESSION_HOURS", "2")
    token = s.redeem_code(s.issue_code("alice", "user"))
    for _ in range(4):                                       # active every 29 minutes: still in ...
        clock.now += 29 * 60
        assert s.lookup(token) == ("alice", "user")
    clock.now += 29 * 60                                     # ... until 2 h after signing in
    assert s.lookup(token) is None
    idle = s.redeem_code(s.issue_code("alice", "user"))
    clock.now += 20 * 60
    assert s.lookup(idle, touch=False) == ("alice", "user")   # the idle check does not count as use
    clock.now += 11 * 60
    assert s.lookup(idle) is None                             # 31 minutes without a run


def test_default_idle_timeout_is_30_minutes(monkeypatch):
    monkeypatch.delenv("PNEUMO_IDLE_MINUTES", raising=False)
    assert config.idle_minutes() == 30
    monkeypatch.setenv("PNEUMO_IDLE_MINUTES", "zero")
    assert config.idle_minutes() == 30                        # malformed: the default, never no limit


def test_revoke_and_revoke_user(store):
    s, _ = store
    a1, a2 = (s.redeem_code(s.issue_code("alice", "user")) for _ in range(2))
    b = s.redeem_code(s.issue_code("bob", "user"))
    s.revoke(a1)
    assert s.lookup(a1) is None and s.lookup(a2) is not None
    assert s.revoke_user("alice") == 1 and s.lookup(a2) is None and s.lookup(b) == ("bob", "user")


# --- back-off -----------------------------------------------------------------------------------

def test_wrong_passwords_lock_the_name_then_the_right_one_is_not_checked(store, monkeypatch):
    s, clock = store
    monkeypatch.setenv("PNEUMO_SIGN_IN_FREE_TRIES", "5")
    monkeypatch.setenv("PNEUMO_SIGN_IN_MAX_LOCK_S", "900")
    keys = attempt_keys("alice", "session-1")
    for _ in range(5):
        assert s.begin_attempt(keys) == 0                    # five free tries (then wrong)
    assert s.begin_attempt(keys) == FIRST_LOCK_S             # the sixth waits, right password or not
    assert s.begin_attempt(attempt_keys("alice", "another-tab")) == FIRST_LOCK_S   # the name is locked
    assert s.begin_attempt(attempt_keys("mallory", "session-1")) == FIRST_LOCK_S   # so is the session
    assert s.begin_attempt(attempt_keys("bob", "session-2")) == 0                  # nobody else
    waits = []
    for _ in range(8):                                       # each later failure doubles the lock ...
        clock.now += waits[-1] if waits else FIRST_LOCK_S
        assert s.begin_attempt(keys) == 0
        waits.append(s.begin_attempt(keys))
    assert waits[:4] == [60, 120, 240, 480] and max(waits) == 900   # ... up to the cap
    clock.now += 900
    assert s.begin_attempt(keys) == 0
    s.succeeded(keys)                                        # the right password clears both keys
    assert all(s.begin_attempt(keys) == 0 for _ in range(5))


def test_parallel_attempts_cannot_slip_past_the_lock(store, monkeypatch):
    s, _ = store
    monkeypatch.setenv("PNEUMO_SIGN_IN_FREE_TRIES", "5")
    allowed, start = [], threading.Barrier(20)

    def attempt(i):
        store_i = SessionStore(s.path, clock=s.clock)        # its own connection, as another session
        start.wait()
        if store_i.begin_attempt(attempt_keys("alice", f"tab-{i}")) == 0:
            allowed.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 5


# --- passwords, users, sign-out -------------------------------------------------------------

@pytest.mark.parametrize("password", [" " * 10, " " * 30, "\t" * 12, "  short    ", "nine char"])
def test_blank_or_short_passwords_are_refused(tmp_path, password):
    with pytest.raises(auth.AuthError, match="not counting spaces"):
        auth.add_user(tmp_path / "users", "alice", password)
    assert not (tmp_path / "users").exists()


def test_a_real_password_with_inner_spaces_is_fine(tmp_path):
    auth.add_user(tmp_path / "users", "alice", "correct horse battery")
    assert auth.authenticate("alice", "correct horse battery", auth.load_users(tmp_path / "users"))


def _cli(*args, stdin="", home):
    env = {**os.environ, "PYTHONPATH": str(config.REPO_ROOT), "PNEUMO_HOME": str(home)}
    env.pop("PNEUMO_USERS_FILE", None)
    return subprocess.run([sys.executable, "-m", "pneumo", "users", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=60)


def test_remove_user_command_line_ends_their_sessions(tmp_path, monkeypatch):
    home, path = tmp_path / "home", tmp_path / "users"
    monkeypatch.setenv("PNEUMO_HOME", str(home))
    auth.add_user(path, "alice", PASSWORD)
    auth.add_user(path, "bob", PASSWORD, admin=True)
    s = SessionStore()
    token = s.redeem_code(s.issue_code("alice", "user"))
    run = _cli("remove-user", "alice", "--file", str(path), home=home)
    assert run.returncode == 0, run.stderr
    assert "removed alice" in run.stdout and "1 signed-in browser" in run.stdout
    assert list(auth.load_users(path)) == ["bob"] and s.lookup(token) is None
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = _cli("remove-user", "alice", "--file", str(path), home=home)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    spaces = _cli("add-user", "carol", "--file", str(path), stdin=" " * 10 + "\n", home=home)
    assert spaces.returncode == 2 and "Traceback" not in spaces.stderr and "carol" not in path.read_text()


def test_sign_out_and_sign_in_empty_the_whole_session():
    session = {auth.SESSION_USER: "alice", auth.SESSION_ROLE: "user", "batch_result": "MRN-4711 table",
               "image_3": b"film", "example": "pneumonia"}
    auth.sign_out(session)
    assert session == {}
    session.update(batch_result="left over")
    auth.sign_in(session, auth.User("bob", "user", "h"))
    assert session == {auth.SESSION_USER: "bob", auth.SESSION_ROLE: "user"}


# --- clear_cache and the model --------------------------------------------------------------------

def test_cache_clears_leave_one_model_loader(monkeypatch, tmp_path):
    """Any browser, signed in or not, can send `clear_cache`; Streamlit then empties
    st.cache_data and st.cache_resource (AppSession._handle_clear_cache_request). Eight of them
    must not start eight Predictors and threads."""
    from streamlit.runtime import caching

    from pages.ui import model

    made = []

    class CountedPredictor:
        @classmethod
        def load(cls, bundle_dir):
            made.append(bundle_dir)
            return cls()

    monkeypatch.setattr(model, "Predictor", CountedPredictor)
    monkeypatch.setenv("PNEUMO_MODEL_DIR", str(tmp_path / "bundle"))
    before = len(model.STARTED)
    first = model.loader()
    first.wait(30)
    first.explain_warm.wait(30)
    for _ in range(8):
        caching.cache_data.clear()
        caching.cache_resource.clear()
        assert model.loader() is first
    assert len(made) == 1 and len(model.STARTED) - before == 1
    for ld in model.STARTED[before:]:
        ld.explain_warm.wait(30)
    assert sum(t.name == "pneumo-model" and t.is_alive() for t in threading.enumerate()) == 0
