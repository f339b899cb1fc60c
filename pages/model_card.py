"""Model card: what the shipped model is for, what it was trained on, how well it does, and
where it must not be trusted."""

import streamlit as st

from pages.ui import card_view, frame
from pneumo import config
from pneumo.errors import PneumoError
from pneumo.evaluation import robustness as rob
from pneumo.present import app_support as sup
from pneumo.present import model_card as mc
from pneumo.present.text_safe import md_escape

frame.require_frame()
st.title("Model card")
try:
    meta, metrics = mc.read_bundle()
except PneumoError as err:
    st.error(f"The model bundle cannot be read: {md_escape(str(err))}")
    st.stop()
if not meta:
    st.info(f"No model bundle at `{config.default_model_dir()}`. Train one with "
            "`python -m pneumo train` or set PNEUMO_MODEL_DIR.", icon=":material/description:")
    st.stop()

st.markdown(f"**{meta.get('name', '?')}** · version {meta.get('version', '?')} · created {meta.get('created', '?')}")

st.subheader("Intended use")
for paragraph in mc.intended_use_text(meta):
    st.markdown(paragraph)
rows = mc.intended_use_rows(meta)
if rows:
    st.dataframe(rows, hide_index=True)
    st.caption(mc.INTENDED_USE_CAPTION)
st.subheader("The model")
st.markdown(mc.model_description(meta))

st.subheader("Training data and provenance")
st.markdown(mc.provenance_text(meta))
data = meta.get("training_data") or meta.get("data") or meta.get("cohort")
if data:
    with st.expander("Training data as recorded in the bundle"):
        st.json(data, expanded=False)

st.subheader("The lab panel")
st.dataframe(sup.panel_table(mc.bundle_panel(meta)), hide_index=True)
st.caption(mc.MISSING_LABS)

card_view.performance(metrics)

st.subheader("Decision rule, calibration and uncertainty")
for paragraph in mc.calibration_text(meta, metrics):
    st.markdown(paragraph)
if meta.get("threshold_rule"):
    st.caption(f"As recorded in the bundle: {meta['threshold_rule']}")
card_view.robustness_table("Robustness to framing", metrics.get("val_field_of_view"), rob.framing_rows,
                           mc.FRAMING_CAPTION)
card_view.robustness_table("Robustness to acquisition changes", metrics.get("val_perturbations"),
                           rob.perturbation_rows, mc.ACQUISITION_CAPTION)

gate = mc.gate_description(meta)
if gate:
    st.subheader("When it will not read a film")
    st.markdown(gate)

st.subheader("Limitations")
st.markdown(mc.limitations_text(metrics))

st.subheader("Versions")
st.dataframe(mc.versions(meta), hide_index=True)
