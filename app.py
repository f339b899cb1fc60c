"""pneumo's Streamlit app: the frame and the router. Pages live in pages/; logic in pneumo/."""
import os

import streamlit as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users

from pages.ui import frame, model, signin  # noqa: E402 - after the env var, before TensorFlow loads

st.set_page_config(page_title="pneumo — pneumonia second opinion", page_icon="🫁", layout="wide")
frame.style()
signin.gate()   # with PNEUMO_USERS_FILE: the sign-in page, and the run stops, unless this browser signed in
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
