"""History: the cases scored here and by the CLI or batches, newest first; no identifiers."""
import streamlit as st

from pages import common

from pneumo import app_support as sup
from pneumo.errors import PneumoError

common.require_frame()
st.title("History")
st.caption("Every scored case is logged with a digest of its pixels, never a name, ID or file name.")
try:
    from pneumo.audit import CaseLog

    frame = sup.history_frame(CaseLog().recent(200))
except PneumoError as err:
    st.error(str(err))
    st.stop()
if frame.empty:
    st.info("No cases scored yet. Score one on the Second opinion page; it will appear here.",
            icon=":material/history:")
else:
    st.dataframe(frame, hide_index=True,
                 column_config={"P(pneumonia)": st.column_config.NumberColumn(format="%.3f")})
    st.download_button("Download (CSV)", sup.csv_bytes(frame), file_name="pneumo-history.csv", mime="text/csv")
