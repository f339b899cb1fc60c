"""pneumo's Streamlit app: the frame and the router. Pages live in pages/; logic in pneumo/."""
import os

import streamlit as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users

from pages.ui import frame, model  # noqa: E402 - after the env var, before TensorFlow loads
from pneumo.present.text_safe import md_escape  # noqa: E402
from pneumo.service import auth  # noqa: E402

st.set_page_config(page_title="pneumo — pneumonia second opinion", page_icon="🫁", layout="wide")
frame.style()


def sign_in_page() -> None:
    """The only page a session sees before signing in, when PNEUMO_USERS_FILE is set."""
    st.title("Sign in")
    with st.form("sign_in", clear_on_submit=True):   # the password does not stay in the session
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            user = auth.authenticate(name.strip(), password)
        except auth.AuthError:
            st.error("Sign-in is configured but the users file cannot be read; ask the administrator.")
            return
        if user is None:
            st.session_state.pop("sign_in_password", None)
            st.error(auth.REFUSAL)
            return
        auth.sign_in(st.session_state, user)
        for key in ("sign_in_password", "sign_in_name"):   # no password left in the session
            st.session_state.pop(key, None)
        st.rerun()


if auth.required() and not auth.allowed(st.session_state):
    # No other page is registered for this session, so no URL reaches one.
    st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:")], position="hidden").run()
    st.stop()
if auth.required():
    with st.sidebar:
        st.caption(f"Signed in as **{md_escape(st.session_state[auth.SESSION_USER])}**"
                   + (" (admin)" if auth.is_admin(st.session_state) else ""))
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            auth.sign_out(st.session_state)
            st.rerun()
nav = st.navigation([
    st.Page("pages/second_opinion.py", title="Second opinion", icon=":material/stethoscope:", default=True),
    st.Page("pages/batch.py", title="Batch", icon=":material/table_rows:"),
    st.Page("pages/metrics.py", title="Metrics comparison", icon=":material/monitoring:"),
    st.Page("pages/model_card.py", title="Model card", icon=":material/description:"),
    st.Page("pages/history.py", title="History", icon=":material/history:"),
])
model.loader()  # start loading the model now, in the background
frame.sidebar()
nav.run()
