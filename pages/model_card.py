"""Model card: what the shipped model is for, what it was trained on, how well it does, and
where it must not be trusted."""
import json

import streamlit as st

from pages import common

from pneumo import app_support as sup
from pneumo import config

common.require_frame()
meta, metrics = sup.read_bundle()
st.title("Model card")
if not meta:
    st.info(f"No model bundle at `{config.default_model_dir()}`. Train one with "
            "`python -m pneumo train` or set PNEUMO_MODEL_DIR.", icon=":material/description:")
    st.stop()

thr = meta.get("threshold")
thr_value = thr.get("value") if isinstance(thr, dict) else thr
st.markdown(f"**{meta.get('name', '?')}** · version {meta.get('version', '?')} · created {meta.get('created', '?')}")

st.subheader("Intended use")
st.markdown("A **second opinion** on pneumonia for a clinician reading an adult or paediatric frontal chest "
            f"film, with or without the admission labs. {sup.DISCLAIMER} It does not replace the reading "
            "of the film by a radiologist, nor the clinical examination.")

st.subheader("Training data and provenance")
st.markdown("The training cohort is **semi-real**: real paediatric chest X-rays (Kermany et al. 2018, "
            "Guangzhou) paired *by class* with real-format adult lab panels from the MIMIC-IV demo "
            "(Boston) — **different people**. The pairing reproduces the paper's protocol on open data; "
            "it cannot teach the model how a film and the labs of the same patient go together.")
data = meta.get("training_data") or meta.get("data") or meta.get("cohort")
if data:
    with st.expander("Training data as recorded in the bundle"):
        st.json(data, expanded=False)

st.subheader("The lab panel")
st.dataframe(sup.panel_table(sup.bundle_panel(meta)), hide_index=True)

st.subheader("Performance (held-out test set)")
test = metrics.get("test") if isinstance(metrics.get("test"), dict) else metrics
nums = {sup.METRIC_NAMES.get(k, k): v for k, v in (test or {}).items() if isinstance(v, (int, float))}
if nums:
    cols = st.columns(min(len(nums), 6))
    for i, (name, v) in enumerate(nums.items()):
        cols[i % len(cols)].metric(name, f"{v:.3f}")
else:
    st.caption("The bundle holds no metrics.json.")

st.subheader("Threshold and calibration")
how = (thr.get("how") or thr.get("method")) if isinstance(thr, dict) else meta.get("threshold_method")
st.markdown(f"Operating threshold **{thr_value if thr_value is not None else '?'}**"
            + (f", chosen by {how}." if how else ".") +
            " Probabilities are calibrated on the validation split; the Metrics page shows the "
            "calibration curve of each experiment.")
calib = meta.get("calibration")
if calib:
    st.code(json.dumps(calib, indent=2)[:2000], language="json")

st.subheader("Limitations")
st.markdown("""
- **Paediatric films, adult labs**: the images are of children aged 1–5, the labs of adults.
- **Semi-real pairing**: film and labs come from different people; the fusion learned the two
  modalities side by side, not their interplay in one patient.
- **Distribution shift**: other scanners, adult films, portable AP films, lateral views, or
  populations with other prevalence may behave differently; the app warns on unusual films.
- **Single site per modality**: one hospital for the films, one for the labs.
- Not validated prospectively. Not a medical device.
""")

st.subheader("Versions")
st.dataframe(sup.versions(meta), hide_index=True)
