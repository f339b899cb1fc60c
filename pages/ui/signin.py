"""Sign-in on a shared deployment (PNEUMO_USERS_FILE): the gate every run passes, the form, the
hand-over of the HttpOnly cookie, the sidebar's name and Sign out, and the idle check. The rules
are pneumo.service.auth (users, passwords) and pneumo.service.sessions (cookie tokens, back-off)."""
from __future__ import annotations

import json
import math

import streamlit as st

from pneumo.errors import PneumoError
from pneumo.present.text_safe import md_escape
from pneumo.service import auth, web_routes
from pneumo.service.sessions import COOKIE, SessionStore, attempt_keys, digest

SIGNED_IN_WITH = "signed_in_with"   # session_state: the digest of the cookie this session signed in with
IDLE_CHECK_S = 60


def browser_token() -> str | None:
    """The sign-in cookie sent by the browser on this session's connection (HttpOnly: no script
    can read or forge it; a replayed session id alone does not carry it)."""
    return st.context.cookies.get(COOKIE)


def _only_page(page) -> None:
    """Run `page` as the session's only page and stop: no other page is registered, so no URL
    reaches one (and Streamlit never falls back to listing pages/)."""
    st.navigation([st.Page(page, title="Sign in", icon=":material/login:")], position="hidden").run()
    st.stop()


def _store() -> SessionStore:
    try:
        return SessionStore()
    except PneumoError as err:
        _only_page(lambda: st.error(f"Sign-in is configured but cannot work here: {md_escape(str(err))}"))


def _signed_in_user(store: SessionStore, token: str | None) -> auth.User | None:
    """The user this browser's cookie names, still in the users file with the same role."""
    found = store.lookup(token)
    if found is None:
        return None
    try:
        user = auth.load_users().get(found[0])
    except auth.AuthError:
        return None
    if user is None or user.role != found[1]:
        store.revoke(token)
        return None
    return user


def gate() -> None:
    """Without sign-in configured, nothing. Otherwise the run goes on only for a browser whose
    cookie names a signed-in user; anything else shows the sign-in page and stops. A session
    that changes hands (signed out, another user, a run without the cookie) starts empty."""
    if not auth.required():
        return
    store, token, ss = _store(), browser_token(), st.session_state
    user = _signed_in_user(store, token)
    if user is None:
        if ss.get(auth.SESSION_USER):
            auth.sign_out(ss)   # everything the last user had in this tab goes with them
        _only_page(sign_in_page)
    if ss.get(auth.SESSION_USER) != user.name or ss.get(SIGNED_IN_WITH) != digest(token):
        auth.sign_in(ss, user)
        ss[SIGNED_IN_WITH] = digest(token)
    with st.sidebar:
        st.caption(f"Signed in as **{md_escape(user.name)}**" + (" (admin)" if user.is_admin else ""))
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            store.revoke(token)
            auth.sign_out(ss)
            st.rerun()
        _idle_check()


@st.fragment(run_every=IDLE_CHECK_S)
def _idle_check() -> None:
    """Signed out after PNEUMO_IDLE_MINUTES without a run, even on a screen nobody touches: the
    whole app reruns (and shows the sign-in page) once the cookie's token has lapsed."""
    try:
        alive = SessionStore().lookup(browser_token(), touch=False) is not None
    except PneumoError:
        alive = False
    if not alive:
        st.rerun(scope="app")


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else None


def sign_in_page() -> None:
    """The only page a session sees before signing in."""
    st.title("Sign in")
    if not web_routes.MOUNTED:
        st.error("Sign-in is configured, but this server was started without its sign-in endpoint; "
                 "start it with `make run` (`streamlit run serve.py`).")
        return
    with st.form("sign_in", clear_on_submit=True):   # the password does not stay in the session
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    for key in ("sign_in_password", "sign_in_name"):   # no password left in the session
        st.session_state.pop(key, None)
    store, name = _store(), name.strip()
    keys = attempt_keys(name, _session_id())
    wait = store.begin_attempt(keys)
    if wait > 0:
        st.error(f"Too many sign-in attempts. Try again in {math.ceil(wait)} s.")
        return
    try:
        user = auth.authenticate(name, password)
    except auth.AuthError:
        st.error("Sign-in is configured but the users file cannot be read; ask the administrator.")
        return
    if user is None:
        st.error(auth.REFUSAL)
        return
    store.succeeded(keys)
    _hand_over(store.issue_code(user.name, user.role))


def _hand_over(code: str) -> None:
    """The browser swaps the one-time code for the HttpOnly cookie, then reloads with it."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    url = ("/" + base if base else "") + web_routes.SESSION_PATH
    st.info("Signing in…")
    st.html(f"""<script>
fetch({json.dumps(url)}, {{method: "POST", credentials: "same-origin",
      headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{code: {json.dumps(code)}}})}})
  .then(r => {{ if (r.ok) {{ window.location.reload(); }} else {{ throw new Error(r.status); }} }})
  .catch(() => {{ document.getElementById("pneumo-sign-in-failed").hidden = false; }});
</script><p id="pneumo-sign-in-failed" hidden>Sign-in could not be completed; reload the page and try again.</p>""",
            unsafe_allow_javascript=True)
