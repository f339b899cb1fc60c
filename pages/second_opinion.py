"""Second opinion: one case (a film and/or the admission labs) -> probability, why, report."""
import streamlit as st

from pages.ui import audit, case_inputs, case_result, frame, model
from pneumo.present.text_safe import md_escape

frame.require_frame()
panel = model.panel()
st.title("Second opinion")
st.caption("A chest X-ray and/or the admission labs in; a calibrated probability of pneumonia, "
           "the reasons, and any reason not to trust it, out.")
top = st.container()   # the verdict, the refusal or "Scoring…": first thing on the page

st.subheader("1 · Chest X-ray")
image_bytes, age, is_example = case_inputs.film(panel)
st.subheader("2 · Admission labs (optional)")
labs_source, from_file = case_inputs.labs(panel, age)
if image_bytes is None and not labs_source:
    top.info(case_inputs.start_hint(), icon=":material/upload_file:")
    st.stop()

key, scored = case_result.score_once(top, image_bytes, labs_source, age, case_inputs.age_answered(age))
if from_file and scored.get("case") is not None:
    case_inputs.labs_as_read(scored["case"], panel, age)
if scored["error"]:
    top.error("Not read: " + md_escape(scored["error"]), icon=":material/block:")
    audit.log_refusal_once(key, scored["error"])
    st.stop()

if scored.get("needs_age"):
    top.info(case_inputs.AGE_PROMPT, icon=":material/cake:")
    st.stop()

pred = model.predictor_or_stop()
audit.log_once(key, scored["result"], scored["case"])     # scored without the request: no label outside
with top:
    show = case_result.verdict(scored["result"], key)
if show is None:
    st.stop()               # outside the intended use and not asked, for this case, to show the number
if show.asked:
    audit.log_request_once(key, scored["result"])         # the request is recorded with the case
expl = case_result.explanation(pred, scored, show)
if expl is not None:
    case_result.details(pred, scored["case"], expl, example=is_example, image_bytes=image_bytes)
