"""Optional sign-in (pneumo.service.auth and app.py's gate) and per-user History."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pneumo import config
from pneumo.service import auth
from pneumo.service.case_log import CaseLog

PASSWORD = "correct horse battery"


@pytest.fixture
def users(tmp_path, monkeypatch):
    path = tmp_path / "etc" / "users"
    assert auth.add_user(path, "alice", PASSWORD) is True
    auth.add_user(path, "root-admin", "another long secret", admin=True)
    monkeypatch.setenv("PNEUMO_USERS_FILE", str(path))
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PNEUMO_MODEL_DIR", str(tmp_path / "no-model"))   # no TensorFlow load in these tests
    return path


def test_hashes_are_salted_and_verified():
    a, b = auth.hash_password("same password"), auth.hash_password("same password")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert auth.verify_password("same password", a) and not auth.verify_password("same passworD", a)
    assert not auth.verify_password("x", "not a hash") and not auth.verify_password("", "")


def test_users_file_format_and_permissions(users):
    text = users.read_text()
    assert PASSWORD not in text
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split(" ")[:2] for line in lines] == [["alice", "user"], ["root-admin", "admin"]]
    if os.name == "posix":
        assert users.stat().st_mode & 0o777 == 0o600
    assert auth.add_user(users, "alice", "a new long password", admin=True) is False   # replaced, not added
    loaded = auth.load_users(users)
    assert len(loaded) == 2 and loaded["alice"].is_admin
    assert auth.authenticate("alice", "a new long password", loaded) is not None


@pytest.mark.parametrize("name,password", [("a b", PASSWORD), ("", PASSWORD), ("x" * 65, PASSWORD),
                                           ("carol", "short")])
def test_add_user_refuses_bad_names_and_short_passwords(tmp_path, name, password):
    with pytest.raises(auth.AuthError):
        auth.add_user(tmp_path / "users", name, password)


def test_malformed_users_file_fails_closed(tmp_path, monkeypatch):
    bad = tmp_path / "users"
    bad.write_text("alice user plaintext-password\n")
    with pytest.raises(auth.AuthError, match="line 1"):
        auth.load_users(bad)
    monkeypatch.setenv("PNEUMO_USERS_FILE", str(tmp_path / "missing"))
    assert auth.required() and not auth.allowed({})
    with pytest.raises(auth.AuthError):
        auth.authenticate("alice", PASSWORD)


def test_authenticate_gives_no_hint(users, monkeypatch):
    loaded = auth.load_users()
    assert auth.authenticate("alice", PASSWORD, loaded).name == "alice"
    assert auth.authenticate("alice", PASSWORD + "x", loaded) is None
    assert auth.authenticate("mallory", PASSWORD, loaded) is None
    assert auth.authenticate(None, None, loaded) is None

    real, work = auth._scrypt, []
    monkeypatch.setattr(auth, "_scrypt", lambda pw, salt, n, r, p, length: work.append((n, r, p, length))
                        or real(pw, salt, n, r, p, length))

    def done(name):   # the scrypt calls one wrong password costs (wall-clock timing: `pneumo bench`, guards)
        work.clear()
        assert auth.authenticate(name, "wrong password!", loaded) is None
        return list(work)

    known = done("alice")
    assert len(known) == 1 and known == done("mallory") == done(None), known   # the same scrypt work either way


def test_session_helpers_follow_the_users_file(users):
    session = {}
    assert not auth.allowed(session) and auth.current_user(session) is None
    auth.sign_in(session, auth.authenticate("alice", PASSWORD))
    assert auth.allowed(session) and auth.current_user(session) == "alice" and not auth.is_admin(session)
    auth.add_user(users, "alice", PASSWORD, admin=True)                # promoted: the old session ends
    assert auth.current_user(session) is None and session == {}


def test_no_users_file_means_open_app(monkeypatch):
    monkeypatch.delenv("PNEUMO_USERS_FILE", raising=False)
    assert not auth.required() and auth.allowed({}) and auth.current_user({"user": "x"}) is None


def test_add_user_command_line(tmp_path):
    path = tmp_path / "users"
    env = {**os.environ, "PYTHONPATH": str(config.REPO_ROOT)}
    env.pop("PNEUMO_USERS_FILE", None)
    run = subprocess.run([sys.executable, "-m", "pneumo", "users", "add-user", "dana", "--admin", "--file", str(path)],
                         input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "added dana (admin)" in run.stdout and PASSWORD not in path.read_text()
    assert auth.authenticate("dana", PASSWORD, auth.load_users(path)).is_admin
    short = subprocess.run([sys.executable, "-m", "pneumo", "users", "add-user", "eve", "--file", str(path)],
                           input="123\n", capture_output=True, text=True, env=env, timeout=60)
    assert short.returncode == 2 and "Traceback" not in short.stderr and short.stderr.count("\n") == 1


# --- the app's gate (AppTest, no browser) ---------------------------------------------------

def _app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(config.REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


class Browser:
    """What AppTest lacks: a browser's cookie jar. It redeems the one-time code the page hands
    over, as the page's script does against serve.py's endpoint, and sends the cookie back."""

    def __init__(self, monkeypatch):
        from pages.ui import signin
        from pneumo.service import web_routes

        self.token = None
        monkeypatch.setattr(web_routes, "MOUNTED", True)               # as under serve.py
        monkeypatch.setattr(signin, "browser_token", lambda: self.token)

    def take_cookie(self, at) -> bool:
        import re

        from pneumo.service.sessions import SessionStore

        bodies = [e.proto.body for e in at.get("html")]
        codes = [m.group(1) for b in bodies for m in re.finditer(r'code: "([A-Za-z0-9_-]+)"', b)]
        if codes:
            self.token = SessionStore().redeem_code(codes[-1])
        return bool(codes)


def _sign_in(at, name, password, browser=None):
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    if browser is not None and browser.take_cookie(at):
        at = _app()                                         # the page reloads, now with the cookie
    return at


def test_login_form_before_any_page(users, monkeypatch):
    browser = Browser(monkeypatch)
    at = _app()
    assert [t.value for t in at.title] == ["Sign in"]
    with pytest.raises(Exception):
        at.switch_page("pages/history.py").run()            # no other page is registered
    for name, password in (("alice", "wrong password"), ("mallory", PASSWORD)):
        _sign_in(at, name, password, browser)
        assert [e.value for e in at.error] == [auth.REFUSAL]
        assert "user" not in at.session_state
    _sign_in(at, "alice", PASSWORD)
    assert "user" not in at.session_state                   # the password alone signs nobody in ...
    assert browser.take_cookie(at)                          # ... the browser's cookie does (it reloads)
    at = _app()
    assert at.session_state["user"] == "alice" and "Sign in" not in [t.value for t in at.title]
    assert "sign_in_password" not in at.session_state or at.session_state["sign_in_password"] == ""


def test_without_the_endpoint_nobody_signs_in(users):
    at = _app()                                             # `streamlit run app.py`: no serve.py routes
    assert "serve.py" in " ".join(e.value for e in at.error)
    assert not at.text_input


def test_history_shows_own_cases_unless_admin(users, monkeypatch):
    from tests.test_audit import FakeResult

    log = CaseLog()
    log.record(FakeResult(probability=0.11), labs={}, origin="app", user="alice")
    log.record(FakeResult(probability=0.22), labs={}, origin="app", user="root-admin")
    log.record(FakeResult(probability=0.33), labs={}, origin="cli")
    browser = Browser(monkeypatch)
    at = _sign_in(_app(), "alice", PASSWORD, browser)
    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["P(pneumonia)"].tolist() == [0.11]
    browser.token = None                                    # another browser
    at = _sign_in(_app(), "root-admin", "another long secret", browser)
    at.switch_page("pages/history.py").run()
    frame = at.dataframe[0].value
    assert frame["P(pneumonia)"].tolist() == [0.33, 0.22, 0.11] and frame["User"].tolist() == ["—", "root-admin", "alice"]


def test_history_without_sign_in_says_it_shows_everything(tmp_path, monkeypatch):
    monkeypatch.delenv("PNEUMO_USERS_FILE", raising=False)
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PNEUMO_MODEL_DIR", str(tmp_path / "no-model"))
    at = _app()
    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    assert "Sign-in is not configured" in " ".join(c.value for c in at.caption)
