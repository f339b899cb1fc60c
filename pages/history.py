"""History: the cases scored here and by the CLI or batches, newest first; no identifiers.
With sign-in, a user sees the cases they scored; an admin sees every case."""
import streamlit as st

from pages.ui import frame
from pneumo.errors import PneumoError
from pneumo.present import app_support as sup
from pneumo.present.text_safe import md_escape
from pneumo.service import auth, uploads

frame.require_frame()
if not auth.allowed(st.session_state):   # app.py registers no page before sign-in; belt and braces
    st.stop()
st.title("History")
st.caption("One row per case (a film's row is updated when its labs or age change), logged with a digest of "
           "its pixels, never a name, ID or file name. Origin: app, cli, batch or dicom-node.")
user = auth.current_user(st.session_state)
admin = auth.is_admin(st.session_state)
if not auth.required():
    st.caption("Sign-in is not configured on this server (PNEUMO_USERS_FILE), so this list shows every "
               "case anyone scored here or with the command line.")
elif admin:
    st.caption("You are an administrator: this list shows every user's cases, and who scored each.")
else:
    st.caption(f"Cases scored by you ({md_escape(user)}) in this app; other users' cases are not shown.")
try:
    from pneumo.service.case_log import CaseLog

    raw = CaseLog().recent(200, user=None if admin or not auth.required() else user)
    frame = sup.history_frame(raw)
    if admin and not frame.empty:
        frame["User"] = raw["user"].fillna("—").values
except PneumoError as err:
    st.error(md_escape(err))
    st.stop()
if frame.empty:
    st.info("No cases scored yet. Score one on the Second opinion page; it will appear here.",
            icon=":material/history:")
else:
    st.dataframe(frame, hide_index=True, column_config={
        "Time": st.column_config.TextColumn(width="medium"), "Origin": st.column_config.TextColumn(width="small"),
        "Outcome": st.column_config.TextColumn(width="small"), "Image": st.column_config.TextColumn(width="small"),
        "P(pneumonia)": st.column_config.NumberColumn(format="%.3f", width="small"),
        "Threshold": st.column_config.NumberColumn(width="small"),
        "Intended use": st.column_config.TextColumn(width="medium"),
        "Warnings": st.column_config.TextColumn(width="large")})
    st.download_button("Download (CSV)", uploads.csv_bytes(frame), file_name="pneumo-history.csv", mime="text/csv")
