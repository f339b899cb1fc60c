"""Batch: score a manifest CSV of films (and optional lab columns) in one go."""
import streamlit as st

from pages.ui import batch_run, frame
from pneumo.service import auth

frame.require_frame()
if not auth.allowed(st.session_state):   # app.py registers no page before sign-in; belt and braces
    st.stop()
st.title("Batch")
st.caption("A manifest CSV with an `image_path` column (relative to the image folder) and, optionally, "
           "one column per lab (the panel's keys). Other columns are carried through. A bad row gets "
           "its reason in the `error` column; the other rows are still scored.")
src = batch_run.source()
if not src.ready:
    st.info("Give a manifest to start.", icon=":material/table_rows:")
elif st.button("Score the batch", type="primary", key="batch_go"):
    batch_run.run(src)
batch_run.last_result()
