"""The Metrics comparison page's pieces: the selection, the curves, imbalanced vs ADASYN, the paper's tables."""
from __future__ import annotations

import streamlit as st

from pneumo.experiments import results as res
from pneumo.present import figures as figs


def selection(entries: list[dict]) -> tuple[list[dict], dict]:
    """Three filters (experiments, models, regimes) -> the entries they pick, and the picks."""
    default = res.default_selection(entries)
    c1, c2, c3 = st.columns([1, 1.7, 1])   # model names are the long ones
    pick = {}
    for col, field, label in ((c1, "experiment", "Datasets (experiments)"), (c2, "model", "Models"),
                              (c3, "regime", "Regimes")):
        options = sorted({e[field] for e in entries})
        pick[field] = col.multiselect(label, options, default=[o for o in default[field] if o in options],
                                      key=f"metrics_{field}")
    chosen = [e for e in entries if all(e[f] in pick[f] for f in pick)]
    return chosen, pick


def curves(chosen: list[dict], several: bool) -> None:
    """ROC, precision-recall, calibration and confusion matrices, one tab each."""
    tabs = st.tabs(["ROC", "Precision–recall", "Calibration", "Confusion matrices"])
    for tab, kind in zip(tabs[:3], ("roc", "pr", "calibration")):
        found = res.curves(chosen, kind)
        if found:
            tab.plotly_chart(figs.curve_figure(found, kind), config={"displayModeBar": False})
        else:
            tab.info("These entries store no per-case probabilities.")
    with tabs[3]:
        cols = st.columns(3)
        shown = 0
        for e in chosen:
            cm = res.confusion(e)
            if cm is not None:
                cols[shown % 3].plotly_chart(figs.confusion_figure(cm[0], f"{res.curve_label(e, several)} @ {cm[1]:.2f}"),
                                             config={"displayModeBar": False})
                shown += 1
        if not shown:
            st.info("These entries store no per-case probabilities.")


@st.cache_data(show_spinner="Bootstrapping the differences…", max_entries=32)
def _differences(pairs: list[dict], metric: str):
    return res.regime_differences(pairs, metric)


def regime_differences(entries: list[dict], pick: dict, several: bool) -> None:
    """ADASYN - imbalanced per model, with its 95% interval, as a figure and a table."""
    st.subheader("Imbalanced vs ADASYN-balanced")
    metric = st.selectbox("Metric", list(res.TABLE_METRICS), index=1, format_func=res.METRIC_NAMES.get)
    # every regime of the chosen experiments and models, whatever the regime filter above shows
    pairs = [e for e in entries if e["experiment"] in pick["experiment"] and e["model"] in pick["model"]
             and e["regime"] in ("imbalanced", "adasyn")]
    diffs = _differences(pairs, metric)
    if len(diffs) and diffs["Difference"].notna().any():
        diffs.insert(0, "Label", [res.model_name(m) + (f" · {x}" if several else "")
                                  for x, m in zip(diffs["Experiment"], diffs["Model"])])
        st.plotly_chart(figs.difference_figure(diffs, res.METRIC_NAMES[metric]), config={"displayModeBar": False})
        st.dataframe(diffs.drop(columns=["Label"]), hide_index=True,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("imbalanced", "adasyn", "CI low", "CI high")}
                     | {"Difference": st.column_config.NumberColumn(format="%+.3f")})
        methods = set(diffs["Interval"]) - {"—"}
        st.caption(f"Difference: ADASYN − imbalanced of the mean test {res.METRIC_NAMES[metric]} over runs. "
                   "95% interval: " + "; ".join(sorted(
                       {res.BOOTSTRAP: "paired bootstrap (2,000 replicates; each resamples the test cases, the "
                                       "same cases for both regimes, and each regime's runs with replacement, every "
                                       "run at its own threshold), 2.5–97.5 percentiles",
                        res.WELCH: "Welch t-interval over the per-run values (no shared per-case probabilities)"
                        }[m] for m in methods) or ["none (one run, no per-case probabilities)"])
                   + ". An interval that excludes 0 is a difference beyond test-set and seed noise.")
    else:
        st.caption("No model has both an imbalanced and an ADASYN entry in the chosen experiments.")


def paper_tables(chosen: list[dict]) -> None:
    """The paper's Tables 1-2, each row beside our matching model and regime."""
    st.subheader("The paper beside ours")
    st.markdown("**Table 1** · test accuracy and loss (%): each paper row beside our matching model and regime")
    st.dataframe(res.paper_table1(chosen).astype(str), hide_index=True)  # dashes beside numbers: one type
    st.markdown("**Table 2** · fusion on imbalanced classes, train and test")
    st.dataframe(res.paper_table2(chosen).astype(str), hide_index=True)
    st.caption("Paper: Ivanova et al., 2024 (MIMIC-IV images and labs of the same patients). Ours: open "
               "semi-real pairs, so the numbers are comparable in protocol, not in data.")
