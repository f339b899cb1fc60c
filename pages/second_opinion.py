"""Second opinion: one case (a film and/or the admission labs) -> probability, why, report."""
import hashlib
import json

import streamlit as st

from pages import common
from pneumo import app_support as sup
from pneumo import app_figures as figs
from pneumo.errors import PneumoError
from pneumo.explain import overlay
from pneumo.labs import parse_labs
from pneumo.report import render_case_report

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
    ss["form_labs"] = sup.form_values(values)
    ss["labs_mode"] = "Form"


def apply_form():
    ss["form_labs"] = sup.form_values({t.key: ss.get(f"lab_{t.key}") for t in panel})


st.title("Second opinion")
st.caption("A chest X-ray and/or the admission labs in; a calibrated probability of pneumonia, "
           "the reasons, and any reason not to trust it, out.")

st.subheader("1 · Chest X-ray")
left, right = st.columns(2, gap="large")
upload = left.file_uploader("PNG, JPEG or DICOM (frontal chest film)", key=f"image_{ss.upload_gen}",
                            on_change=lambda: ss.update(example=None))
with right:
    if examples:
        c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
        c1.selectbox("Or try an example", ["pneumonia", "normal"], key="example_kind",
                     format_func=lambda k: f"{k.capitalize()} example")
        c2.button("Load an example case", on_click=load_example, type="primary")
    if ss.get("example") and not upload:
        st.markdown(f"<div class='pneumo-semi'>{sup.SEMI_REAL_LABEL}</div>", unsafe_allow_html=True)
    summary = st.empty()   # the answer in one line, up here, filled in once the case is scored

st.subheader("2 · Admission labs (optional)")
mode = st.radio("Labs from", ["Form", "File (CSV or FHIR JSON)"], horizontal=True, key="labs_mode")
labs_source = None
if mode == "Form":
    with st.form("labs_form", border=False):
        tests = list(panel)
        for row in range(0, len(tests), 5):  # one st.columns per row keeps the order when stacked
            for col, t in zip(st.columns(5), tests[row:row + 5]):
                flag = sup.range_flag(t, ss.get(f"lab_{t.key}"))
                col.number_input(f"{sup.short_name(t.key, t.name)} ({t.unit})" + (f" · {flag}" if flag else ""),
                                 value=None, key=f"lab_{t.key}", help=sup.lab_help(t),
                                 placeholder=sup.ref_text(t, unit=False), format="%g", step=0.1)
        st.form_submit_button("Use these labs", on_click=apply_form)
    labs_source = ss.get("form_labs")
    flagged = [f"{sup.short_name(t.key, t.name)} {sup.fmt_number(ss.get(f'lab_{t.key}'))} ({sup.range_flag(t, ss.get(f'lab_{t.key}'))})"
               for t in panel if sup.range_flag(t, ss.get(f"lab_{t.key}"))]
    if flagged and labs_source:
        st.markdown(f"<span class='pneumo-flag'>Outside the reference range:</span> {', '.join(flagged)}",
                    unsafe_allow_html=True)
else:
    lab_file = st.file_uploader("A wide or long CSV, or a FHIR R4 Bundle", type=["csv", "json"], key="labs_file")
    labs_source = lab_file.getvalue() if lab_file else None

image_bytes = upload.getvalue() if upload else (examples[ss.example].read_bytes() if ss.get("example") in examples else None)
if image_bytes is None and not labs_source:
    st.info("Upload a chest X-ray (and the labs, if you have them)" +
            (", or load an example case." if examples else "."), icon=":material/upload_file:")
    st.stop()

st.divider()
pred = common.predictor_or_stop()
key = sup.case_key(hashlib.sha256(image_bytes).hexdigest() if image_bytes else None,
                   labs_source if isinstance(labs_source, dict) else hashlib.sha256(labs_source or b"").hexdigest())
if ss.get("scored", {}).get("key") != key:
    from pneumo.predictor import Case
    try:
        with st.spinner("Reading the case, scoring it and explaining the result…"):
            case = Case.from_sources(image=image_bytes, labs=labs_source, panel=pred.panel)
            ss["scored"] = {"key": key, "case": case, "expl": pred.explain(case), "error": None}
    except PneumoError as err:
        ss["scored"] = {"key": key, "error": str(err)}
scored = ss["scored"]
if scored["error"]:
    summary.error(scored["error"], icon=":material/block:")
    st.error(scored["error"])
    st.stop()
case, expl = scored["case"], scored["expl"]
r = expl.result
if r.validity == "refuse":
    st.error("Not read: " + "; ".join(r.warnings or ["this input is outside what the model can judge"]))
    st.stop()
common.log_once(key, r, case)
summary.markdown(f"**{r.label}** · P(pneumonia) {r.probability:.2f} (threshold {r.threshold:.2f}) · "
                 "details below", help="The full result, the reasons and the report are below the labs.")

for w in r.warnings:
    st.warning(w)
c1, c2 = st.columns([1, 2], vertical_alignment="center")
c1.markdown(f"<div class='pneumo-result {r.label}'>{r.label}</div><div class='pneumo-sub'>P(pneumonia) "
            f"<b>{r.probability:.2f}</b> · threshold {r.threshold:.2f} · {r.band}</div>", unsafe_allow_html=True)
c1.markdown(sup.contribution_sentence(expl.contribution or r.modality_contribution, r.modalities))
c2.plotly_chart(figs.probability_figure(r.probability, r.threshold, r.label), config={"displayModeBar": False})

over = None
if case.image is not None:
    st.subheader("Where the film drove the answer")
    alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.45, 0.05) if expl.gradcam is not None else 0.0
    a, b, _ = st.columns([2, 2, 1])
    a.image(case.image.pixels, caption="The film as read", clamp=True, width="stretch")
    if expl.gradcam is not None:
        over = overlay(case.image.pixels, expl.gradcam, alpha)
        b.image(over, caption="Grad-CAM: warmer = raised the image score", width="stretch")

st.subheader("What the labs contributed")
if expl.shap_values:
    left, right = st.columns([3, 2], gap="large")
    left.plotly_chart(figs.shap_figure(sup.shap_frame(expl.shap_values, expl.lab_display)),
                      config={"displayModeBar": False})
    left.caption("SHAP values: how much each lab moved P(pneumonia); red towards pneumonia, blue away. "
                 "A test not given is treated as not measured." +
                 (" Here the film already settles the answer, so the labs barely move it."
                  if max(map(abs, expl.shap_values.values())) < 0.01 else ""))
    with right:
        common.what_if(pred, case, r.probability)
else:
    st.caption("No labs given, so there is nothing to attribute here.")

example = sup.SEMI_REAL_LABEL if ss.get("example") and not upload else None
d1, d2, _ = st.columns([3, 2, 2])
d1.download_button("Download the case report (HTML)", file_name="pneumo-case-report.html", mime="text/html",
                   data=render_case_report(expl, case.image.pixels if case.image is not None else None, over,
                                           example_label=example), icon=":material/download:")
d2.download_button("Result as JSON", file_name="pneumo-result.json", mime="application/json",
                   data=json.dumps(expl.to_dict(), indent=2), icon=":material/data_object:")
