"""Sign-in sessions attacked in a real browser (issue 28): the app served as deployed
(`streamlit run serve.py`) with a users file of alice and bob.

- one tab, two users: what Alice scored must be gone when Bob signs in after her;
- Streamlit's session id (it is in every upload URL) replayed on a raw websocket, without the
  browser's cookie: no "Signed in as alice", none of her History;
- wrong passwords back off per user name, across tabs;
- every response refuses framing by other sites; /_stcore/metrics is closed.
"""
from __future__ import annotations

import os
import re
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pneumo.service import auth

pytestmark = pytest.mark.e2e
ALICE, BOB = ("alice", "alice's long secret"), ("bob", "bob's long secret!")
FREE_TRIES = 3
MODEL_WAIT = 120_000


@pytest.fixture(scope="module")
def signed_app(tmp_path_factory, app_starter):
    """serve.py with sign-in on; yields (url, PNEUMO_HOME)."""
    tmp = tmp_path_factory.mktemp("sessions")
    users = tmp / "users"
    for name, password in (ALICE, BOB):
        auth.add_user(users, name, password)
    env = dict(os.environ, PNEUMO_HOME=str(tmp / "home"), PNEUMO_USERS_FILE=str(users), TF_CPP_MIN_LOG_LEVEL="3",
               PNEUMO_SIGN_IN_FREE_TRIES=str(FREE_TRIES))
    with app_starter(tmp, env) as url:
        yield url, tmp / "home"


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


def _sign_in(page, url, who, *, expect_in=True):
    if not page.url.startswith(url):
        page.goto(url)
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_role("textbox", name="User name").fill(who[0])
    page.get_by_role("textbox", name="Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    if expect_in:
        page.get_by_text(f"Signed in as {who[0]}").wait_for()


def _sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()


def _score_a_manifest(page, url, tmp_path):
    """Alice's batch: a manifest carrying names and MRNs (its films are not there: every row is
    scored as an error, and the table still shows the carried-through columns)."""
    manifest = tmp_path / "ward.csv"
    manifest.write_text("image_path,patient_name,mrn\nmissing1.png,Jane Roe,MRN-4711\nmissing2.png,John Doe,MRN-0815\n")
    page.get_by_role("link", name="Batch").click()          # in-app: the same Streamlit session
    page.get_by_role("heading", name="Batch").wait_for()
    with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url) as upload:
        page.locator("[data-testid='stFileUploaderDropzoneInput']").nth(0).set_input_files(str(manifest))
    page.get_by_role("button", name="Score the batch").click()
    page.get_by_text("2 with errors").first.wait_for(timeout=MODEL_WAIT)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    return upload.value.url


def test_sign_out_leaves_nothing_for_the_next_user(signed_app, context, tmp_path, shot):
    url, _ = signed_app
    page = context.new_page()
    _sign_in(page, url, ALICE)
    _score_a_manifest(page, url, tmp_path)
    # Alice's table and CSV (the button may draw a moment after the table on a loaded machine)
    page.get_by_role("button", name="Download results (CSV)").first.wait_for(timeout=MODEL_WAIT)
    assert page.get_by_role("button", name="Download results (CSV)").count() == 1
    _sign_out(page)
    _sign_in(page, url, BOB)
    page.get_by_role("link", name="Batch").click()
    page.get_by_role("heading", name="Batch").wait_for()
    page.get_by_text("Give a manifest to start.").wait_for()
    page.wait_for_timeout(1500)    # a leftover table would be drawn by now
    shot(page, "20-bob-after-alice-batch")
    assert page.locator("[data-testid='stDataFrame']").count() == 0
    assert page.get_by_role("button", name="Download results (CSV)").count() == 0
    assert "MRN-4711" not in page.locator("body").inner_text()


def _replay(url: str, session_id: str, page_name: str) -> str:
    """Connect a raw websocket as Streamlit's frontend does, naming `session_id` and sending no
    cookie, ask for a run of `page_name`, and return the text of everything the server sent."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    texts = []
    with connect(url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit", "none", session_id],
                 origin=url, max_size=None) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_name = page_name
        ws.send(msg.SerializeToString())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                raw = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            texts.append(str(fwd))
            if fwd.WhichOneof("type") == "script_finished":
                break
    return "\n".join(texts)


def test_a_replayed_session_id_without_the_cookie_is_signed_out(signed_app, context, tmp_path, shot):
    url, _ = signed_app
    page = context.new_page()
    _sign_in(page, url, ALICE)
    upload_url = _score_a_manifest(page, url, tmp_path)      # the id is in the URL: proxies log it
    session_id = re.search(r"/_stcore/upload_file/([^/]+)/", upload_url).group(1)
    seen = _replay(url, session_id, "history")
    assert "Signed in as" not in seen and "alice" not in seen, seen[-2000:]
    assert "MRN-4711" not in seen and "Sign in" in seen
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["pneumo_session"]["httpOnly"] and cookies["pneumo_session"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("pneumo_session") == -1     # no script reads it
    # a second browser that knows only the session id (no cookie) gets the sign-in page too
    other = context.browser.new_context()
    try:
        stranger = other.new_page()
        stranger.goto(f"{url}/history")
        stranger.get_by_role("heading", name="Sign in").wait_for()
    finally:
        other.close()
    # Alice's own browser, which holds the cookie, is still signed in
    page.goto(f"{url}/history")
    page.get_by_text("Signed in as alice").wait_for()
    shot(page, "21-alice-still-signed-in")


def _attempts(home: Path, name: str) -> int | None:
    """Sign-in attempts counted against `name` so far (the shared store the app writes); None
    without a store (an app that counts nothing)."""
    if not (home / "sessions.sqlite").exists():
        return None
    with sqlite3.connect(home / "sessions.sqlite") as db:
        row = db.execute("SELECT count FROM attempts WHERE key = ?", ("user:" + name,)).fetchone()
    return row[0] if row else 0


def test_wrong_passwords_back_off_per_user_across_tabs(signed_app, context, shot):
    url, home = signed_app
    page = context.new_page()
    page.goto(url)
    for tried in range(1, FREE_TRIES + 1):
        _sign_in(page, url, (BOB[0], "not bob's password"), expect_in=False)
        deadline = time.monotonic() + 30
        while (_attempts(home, BOB[0]) or tried) < tried and time.monotonic() < deadline:   # that run checked it
            time.sleep(0.1)
        page.get_by_text(auth.REFUSAL).wait_for()
    _sign_in(page, url, BOB, expect_in=False)           # the right password, but too late
    page.get_by_text("Too many sign-in attempts").wait_for()
    shot(page, "22-sign-in-backs-off")
    assert page.get_by_text("Signed in as").count() == 0
    fresh = context.browser.new_context().new_page()     # a new tab and session: the name is still locked
    try:
        _sign_in(fresh, url, BOB, expect_in=False)
        fresh.get_by_text("Too many sign-in attempts").wait_for()
    finally:
        fresh.context.close()
    assert _attempts(home, BOB[0]) == FREE_TRIES      # a locked name's tries are not even checked


def test_headers_refuse_framing_and_metrics_are_closed(signed_app):
    url, _ = signed_app
    with urllib.request.urlopen(url + "/", timeout=10) as r:
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "/_stcore/metrics", timeout=10)
    assert refused.value.code == 404
    request = urllib.request.Request(url + "/api/pneumo/session", data=b'{"code": "guessed-code-guessed-code"}',
                                     headers={"Origin": url, "Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as bad_code:
        urllib.request.urlopen(request, timeout=10)
    assert bad_code.value.code == 403
