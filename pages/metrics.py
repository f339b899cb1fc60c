"""Metrics comparison: every stored experiment and shipped bundle, side by side."""
import streamlit as st

from pages import common

from pneumo import app_figures as figs
from pneumo import results_view as res

common.require_frame()
st.title("Metrics comparison")
entries = res.load_entries()
for bad in [e for e in entries if "error" in e]:
    st.warning(f"Could not read {bad['error']}")
entries = [e for e in entries if "error" not in e]
if not entries:
    st.info("No results yet. Run the paper's protocol to produce them:\n\n"
            "`python -m pneumo experiment configs/paper.toml`\n\n"
            "Each experiment writes one JSON file under `results/`; this page reads them all.",
            icon=":material/monitoring:")
    st.stop()

st.caption("Test metrics as mean ± sd over runs [95% CI]. Curves pool the per-case test probabilities "
           "of every run. The cohorts are semi-real (real images and real-format labs of different people).")
c1, c2, c3 = st.columns(3)
pick = {}
for col, field, label in ((c1, "experiment", "Datasets (experiments)"), (c2, "model", "Models"),
                          (c3, "regime", "Regimes")):
    options = sorted({e[field] for e in entries})
    pick[field] = col.multiselect(label, options, default=options)
chosen = [e for e in entries if all(e[f] in pick[f] for f in pick)]
if not chosen:
    st.info("Nothing matches this selection.")
    st.stop()

st.dataframe(res.metrics_table(chosen), hide_index=True)
tabs = st.tabs(["ROC", "Precision–recall", "Calibration", "Confusion matrices"])
for tab, kind in zip(tabs[:3], ("roc", "pr", "calibration")):
    curves = res.curves(chosen, kind)
    if curves:
        tab.plotly_chart(figs.curve_figure(curves, kind), config={"displayModeBar": False})
    else:
        tab.info("These entries store no per-case probabilities.")
with tabs[3]:
    cols = st.columns(3)
    shown = 0
    for e in chosen:
        cm = res.confusion(e)
        if cm is not None:
            cols[shown % 3].plotly_chart(figs.confusion_figure(cm[0], f"{res.entry_name(e)} @ {cm[1]:.2f}"),
                                         config={"displayModeBar": False})
            shown += 1
    if not shown:
        st.info("These entries store no per-case probabilities.")

st.subheader("Imbalanced vs ADASYN-balanced")
metric = st.selectbox("Metric", list(res.TABLE_METRICS), index=1, format_func=res.METRIC_NAMES.get)
pairs = res.regime_pairs(chosen, metric)
if len(pairs):
    st.dataframe(pairs, hide_index=True)
else:
    st.caption("No imbalanced or ADASYN entries in this selection.")

st.subheader("The paper beside ours")
st.markdown("**Table 1** · test accuracy and loss (%): each paper row beside our matching model and regime")
st.dataframe(res.paper_table1(chosen), hide_index=True)
st.markdown("**Table 2** · fusion on imbalanced classes, train and test")
st.dataframe(res.paper_table2(chosen), hide_index=True)
st.caption("Paper: Ivanova et al., 2024 (MIMIC-IV images and labs of the same patients). Ours: open "
           "semi-real pairs, so the numbers are comparable in protocol, not in data.")
