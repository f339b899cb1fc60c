"""Serve app.py with pneumo's sign-in endpoint and security headers: `streamlit run serve.py`
(`make run`). Streamlit finds `app` below and serves app.py through it (st.App, Streamlit >= 1.5x);
`streamlit run app.py` still works without sign-in, but with PNEUMO_USERS_FILE set it lets nobody
in, since only these routes can set the HttpOnly sign-in cookie (SECURITY.md)."""
from streamlit.starlette import App

from pneumo.service import web_routes

app = App("app.py", routes=web_routes.routes(), middleware=web_routes.middleware())
