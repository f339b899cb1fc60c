"""Each scored or refused case goes into the case log once, not on every rerun of the page."""
from __future__ import annotations

import streamlit as st

from pneumo.errors import PneumoError
from pneumo.present.text_safe import md_escape
from pneumo.service import auth
from pneumo.service.case_log import CaseLog


def case_identity(result) -> str:
    """What makes a case one case on this page: its film (pixel digest); labs alone are one case per
    session. Typing the labs or the age of the same film updates its row instead of adding one."""
    digest = getattr(result, "image_digest", None)
    return f"film:{digest}" if digest else "labs only"


def log_once(key: str, result, case) -> None:
    """Record a scored case in the case log once, not on every rerun of the page: the first answer
    for a case adds its row, a later one (other labs, another age) replaces what the row holds."""
    logged = st.session_state.setdefault("logged_cases", set())
    if key in logged:
        return
    rows = st.session_state.setdefault("case_rows", {})
    identity = case_identity(result)
    try:
        log = CaseLog()
        if identity in rows:
            log.update(rows[identity], result, labs=case.labs)
        else:
            rows[identity] = log.record(result, labs=case.labs, origin="app", user=current_user())
        st.session_state.setdefault("logged_rows", {})[key] = rows[identity]
    except PneumoError as err:
        st.warning(f"The case was not logged: {md_escape(str(err))}")
    logged.add(key)


def log_request_once(key: str, result) -> None:
    """The user asked to see this outside case anyway: recorded with its logged row, once."""
    asked = st.session_state.setdefault("logged_requests", set())
    row = st.session_state.get("logged_rows", {}).get(key)
    if key in asked or row is None:
        return
    try:
        CaseLog().record_outside_request(row, result)
    except PneumoError as err:
        st.warning(f"The request was not logged: {md_escape(str(err))}")
    asked.add(key)


def log_refusal_once(key: str, reason: str) -> None:
    """A refused case is logged too (the reason only: no pixels, no values), once per case."""
    logged = st.session_state.setdefault("logged_cases", set())
    if key in logged:
        return
    try:
        CaseLog().record_refusal(reason, origin="app", user=current_user())
    except PneumoError as err:
        st.warning(f"The refusal was not logged: {md_escape(str(err))}")
    logged.add(key)


def current_user() -> str | None:
    """The signed-in user's name, when a login is configured."""
    return st.session_state.get(auth.SESSION_USER)
