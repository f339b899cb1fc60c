"""Second opinion: one case (a film and/or the admission labs) -> probability, why, report."""
import hashlib

import streamlit as st

from pages import case_view, common
from pneumo.data.labs import parse_labs
from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.present import app_support as sup
from pneumo.present import lab_display
from pneumo.present.text_safe import md_escape

common.require_frame()
ss = st.session_state
ss.setdefault("upload_gen", 0)
panel = common.panel()
examples = sup.example_images()


def load_example():
    """Button callback: the example film plus its lab panel, typed into the form."""
    kind = ss["example_kind"]
    ss["example"] = kind
    ss["upload_gen"] += 1  # a fresh uploader: the example replaces any uploaded film
    values = parse_labs(sup.example_labs(kind), panel).values
    for t in panel:
        ss[f"lab_{t.key}"] = values.get(t.key)
    ss["labs_mode"] = "Form"


st.title("Second opinion")
st.caption("A chest X-ray and/or the admission labs in; a calibrated probability of pneumonia, "
           "the reasons, and any reason not to trust it, out.")
top = st.container()   # the verdict, the refusal or "Scoring…": first thing on the page

st.subheader("1 · Chest X-ray")
left, right = st.columns(2, gap="large")
upload = left.file_uploader("PNG, JPEG or DICOM (frontal chest film)", key=f"image_{ss.upload_gen}",
                            on_change=lambda: ss.update(example=None))
age = left.number_input("Age in years (optional; a DICOM header's age is used first)", min_value=0.0,
                        max_value=130.0, value=None, step=1.0, format="%g", key="age",
                        help="Used only to check the intended use (children aged 1-5); never shown or stored.")
with right:
    if examples:
        c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
        c1.selectbox("Or try an example", ["pneumonia", "normal"], key="example_kind",
                     format_func=lambda k: f"{k.capitalize()} example")
        c2.button("Load an example case", on_click=load_example, type="primary")
    if ss.get("example") and not upload:
        st.markdown(f"<div class='pneumo-semi'>{sup.SEMI_REAL_LABEL}</div>", unsafe_allow_html=True)

st.subheader("2 · Admission labs (optional)")
mode = st.radio("Labs from", ["Form", "File (CSV or FHIR JSON)"], horizontal=True, key="labs_mode")
if mode == "Form":
    labs_source = case_view.lab_form(panel)
else:
    lab_file = st.file_uploader("A wide or long CSV, or a FHIR R4 Bundle", type=["csv", "json"], key="labs_file")
    labs_source = lab_file.getvalue() if lab_file else None

image_bytes = upload.getvalue() if upload else (examples[ss.example].read_bytes() if ss.get("example") in examples else None)
if image_bytes is None and not labs_source:
    top.info("Upload a chest X-ray (and the labs, if you have them)" +
             (", or load an example case." if examples else "."), icon=":material/upload_file:")
    st.stop()

key = lab_display.case_key(hashlib.sha256(image_bytes).hexdigest() if image_bytes else None,
                   labs_source if isinstance(labs_source, dict) else hashlib.sha256(labs_source or b"").hexdigest())
key = f"{key}:{age}"
if ss.get("scored", {}).get("key") != key:
    with top, st.spinner("Scoring… (reading the film, scoring the case, explaining the result)"):
        pred = common.predictor_or_stop()
        try:
            case = Case.from_sources(image=image_bytes, labs=labs_source, panel=pred.panel, age=age)
            ss["scored"] = {"key": key, "case": case, "expl": pred.explain(case), "error": None}
        except PneumoError as err:
            ss["scored"] = {"key": key, "error": str(err), "case": None}
scored = ss["scored"]
if mode != "Form" and scored.get("case") is not None:
    case_view.labs_as_read(scored["case"], panel)
if scored["error"]:
    top.error("Not read: " + md_escape(scored["error"]), icon=":material/block:")
    common.log_refusal_once(key, scored["error"])
    st.stop()

pred = common.predictor_or_stop()
case, expl = scored["case"], scored["expl"]
r = expl.result
common.log_once(key, r, case)
with top:
    if not case_view.verdict(r):
        st.stop()           # outside the intended use and not asked to show the number anyway
case_view.details(pred, case, expl, example=ss.get("example") is not None and not upload)
