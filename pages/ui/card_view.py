"""The Model card page's pieces that are more than a paragraph: test figures and robustness tables."""
from __future__ import annotations

import streamlit as st

from pneumo.experiments import results as res
from pneumo.present import model_card as mc


def performance(metrics: dict) -> None:
    """The fusion model's test figures with their CIs, then every view's at the one threshold."""
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
            st.markdown(mc.PERFORMANCE_BY_VIEW)
            st.dataframe(by_view, hide_index=True)
            st.caption(mc.performance_caption(view.get("n", "?"), metrics))
    else:
        st.caption("The bundle holds no test metrics (metrics.json).")


def robustness_table(title: str, report: dict | None, rows, what: str) -> None:
    """One robustness report of metrics.json (val films, image only) as a table with its caption."""
    if not report:
        return
    st.subheader(title)
    st.dataframe(rows(report), hide_index=True)
    st.caption(f"Image only, at its threshold {report['threshold']:.3f}, on the {report['n']} validation films, {what}")
