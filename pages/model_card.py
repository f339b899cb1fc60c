"""Model card: what the shipped model is for, what it was trained on, how well it does, and
where it must not be trusted."""

import streamlit as st

from pages import common
from pneumo import config
from pneumo.errors import PneumoError
from pneumo.evaluation import robustness as rob
from pneumo.experiments import results as res
from pneumo.present import app_support as sup
from pneumo.present import case_words as words
from pneumo.present import model_card as mc
from pneumo.present.text_safe import md_escape

common.require_frame()
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
population = (meta.get("intended_use") or {}).get("description", "children aged 1-5, frontal chest films")
st.markdown(f"A **second opinion** on pneumonia for a clinician reading a chest film, with or without the "
            f"admission labs, validated on **{population}** only. {sup.DISCLAIMER} It does not replace the "
            "reading of the film by a radiologist, nor the clinical examination.")
st.markdown("Every answer says whether the case is **within** that use, **outside** it, or **unknown**, from "
            "the strongest evidence there is: the DICOM header (the patient's age, used only as an age and never "
            "shown, and the view position), then an age the user gives, then a check on the film itself "
            "(adult or child, frontal or lateral). Outside it the app gives no label, only the number behind "
            "an explicit *show anyway (not validated)*; the command line and batches leave `label` empty "
            "unless `--allow-outside` is given.")
rows = mc.intended_use_rows(meta)
if rows:
    st.dataframe(rows, hide_index=True)
    st.caption("How often the check on the film flags a film as outside the intended use, on films of each "
               "kind (the adult films are split by patient; no test film was used to fit or threshold it).")
st.subheader("The model")
st.markdown(mc.model_description(meta))

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
st.dataframe(sup.panel_table(mc.bundle_panel(meta)), hide_index=True)

st.subheader("Performance (held-out test set)")
view = (metrics.get("test") or {}).get("fusion") or {}
ci = (metrics.get("test_ci") or {}).get("fusion") or {}
shown = [m for m in ("roc_auc", "pr_auc", "accuracy", "f1", "mcc", "sensitivity", "specificity", "brier")
         if isinstance(view.get(m), (int, float))]
if shown:
    cols = st.columns(4)
    for i, m in enumerate(shown):
        c = ci.get(m) or {}
        cols[i % 4].metric(res.METRIC_NAMES.get(m, m), f"{view[m]:.3f}",
                           help=f"95% bootstrap CI {c['low']:.3f}–{c['high']:.3f}" if "low" in c else None)
    st.caption("Fusion model (film + labs) on the test split of its training cohort.")
    by_view = mc.performance_rows(metrics)
    if by_view:
        st.markdown("**By what the case holds.** A case with only a film, or only labs, is scored by the same "
                    "model with the other modality marked missing, at the one operating threshold:")
        st.dataframe(by_view, hide_index=True)
        st.caption(f"The test split of the training cohort ({view.get('n', '?')} cases: Kermany's official test "
                   "films, each paired with a lab panel of its class from held-out admissions); 95% bootstrap "
                   "intervals. The Metrics page compares these with the paper.")
else:
    st.caption("The bundle holds no test metrics (metrics.json).")

st.subheader("Decision rule, calibration and uncertainty")
if isinstance(meta.get("threshold"), (int, float)):
    st.markdown(words.rule_sentence(float(meta["threshold"])))
if meta.get("threshold_rule"):
    st.caption(f"As recorded in the bundle: {meta['threshold_rule']}")
temps = mc.view_settings(meta, "temperature")
if temps:
    st.markdown("Probabilities are calibrated by temperature scaling, one temperature per view, fitted on the "
                "validation split, so a probability means the same whatever the case holds: "
                + ", ".join(f"{view} T = {t:.3f}" for view, t in temps.items()) + ". With one threshold on "
                "those probabilities, adding a lab value can move the label only the way it moves the probability.")
st.markdown("**The uncertainty band** beside each answer: " +
            "; ".join(f"*{band}*: {text}" for band, text in words.BANDS.items()) + ".")
cal = (metrics.get("calibration") or {}).get("fusion")
if cal and cal.get("val_ece_before") is not None:
    st.markdown(f"Expected calibration error on validation: {cal['val_ece_before']:.3f} before, "
                f"{cal['val_ece_after']:.3f} after.")


def robustness_table(title: str, report: dict | None, rows, what: str) -> None:
    """One robustness report of metrics.json (val films, image only) as a table with its caption."""
    if not report:
        return
    st.subheader(title)
    st.dataframe(rows(report), hide_index=True)
    st.caption(f"Image only, at its threshold {report['threshold']:.3f}, on the {report['n']} validation films, {what}")


robustness_table("Robustness to framing", metrics.get("val_field_of_view"), rob.framing_rows,
                 "each centre-cropped to a tighter frame and resized back: the same anatomy, framed closer. "
                 "A model that keeps its specificity does not read tight framing as pneumonia.")
robustness_table("Robustness to acquisition changes", metrics.get("val_perturbations"), rob.perturbation_rows,
                 "each changed as a real film can be: framed wider or off-centre, turned, exposed differently, "
                 "noisier. Where sensitivity falls, a film of that kind is more often read as normal.")

gate = mc.gate_description(meta)
if gate:
    st.subheader("When it will not read a film")
    st.markdown(gate)

st.subheader("Limitations")
st.markdown("""
- **Paediatric films, adult labs**: the images are of children aged 1–5, the labs of adults.
- **Semi-real pairing**: film and labs come from different people; the fusion learned the two
  modalities side by side, not their interplay in one patient.
- **Distribution shift**: other scanners, portable AP films or populations with other prevalence
  may behave differently; the app warns on unusual films and says when a case is outside the
  intended use (adults, lateral views), but the check on the film can miss (see its figures above).
- **Text burned into the film** (names, dates, markers) is not removed from the report's image.
- **Single site per modality**: one hospital for the films, one for the labs.
- Not validated prospectively. Not a medical device.
""")
weak = mc.weakest_changes(metrics.get("val_perturbations"))
if weak:
    st.markdown("- **Acquisition changes that cost accuracy** (validation films, image only; see the table "
                "above): " + "; ".join(weak) + ". Where sensitivity falls, pneumonia films of that kind are "
                "more often read as normal; where specificity falls, normal films are more often read as pneumonia.")

st.subheader("Versions")
st.dataframe(mc.versions(meta), hide_index=True)
