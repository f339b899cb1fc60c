"""Metrics comparison: every stored experiment and shipped bundle, side by side."""
import streamlit as st

from pages.ui import frame, results_view
from pneumo.experiments import results as res

frame.require_frame()
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

chosen, pick = results_view.selection(entries)
if not chosen:
    st.info("Nothing matches this selection.")
    st.stop()
several = len(pick["experiment"]) > 1
results_view.about(entries, chosen)
results_view.table(chosen)
st.caption("Colour: model (the same in every plot) · line: solid imbalanced or shipped, dashed ADASYN, "
           "dotted class-weighted" + (" · marker: experiment" if several else "")
           + (f" · {len(chosen)} curves: fewer read better" if len(chosen) > res.MAX_DEFAULT_CURVES else "")
           + ". The cohorts are semi-real (real images and real-format labs of different people).")
results_view.curves(chosen, several)
results_view.differences(entries, pick)
results_view.paper_tables([e for e in entries if e["experiment"] in pick["experiment"]])  # each row picks its own
