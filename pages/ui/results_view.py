"""The Metrics comparison page's pieces: the selection, what each experiment is, the table, the curves,
the paired differences (fusion vs the other models, imbalanced vs ADASYN), the paper's tables."""
from __future__ import annotations

import streamlit as st

from pneumo.experiments import results as res
from pneumo.present import figures as figs


def selection(entries: list[dict]) -> tuple[list[dict], dict]:
    """Three filters (experiments, models, regimes) -> the entries they pick, and the picks. Pills, not
    multiselects: every option in sight and names that wrap rather than scroll out of a box. A shipped
    bundle has one regime of its own, so it shows whenever it is picked, whatever the regime filter."""
    default = res.default_selection(entries)
    c1, c2, c3 = st.columns([1.2, 1.5, 1])
    names = {e["experiment"]: res.experiment_label(e["experiment"]) for e in entries}
    regimes = _ordered({e["regime"] for e in entries if e["regime"] != "shipped"}, REGIME_ORDER) or ["shipped"]
    options = {"experiment": sorted(names, key=lambda x: (x.startswith("bundle:"), x)),   # results files first
               "model": _ordered({e["model"] for e in entries}, MODEL_ORDER), "regime": regimes}
    pick = {}
    for col, field, label, show in ((c1, "experiment", "Datasets (experiments)", names.get),
                                    (c2, "model", "Models", _model_chip), (c3, "regime", "Regimes", _regime_chip)):
        pick[field] = col.pills(label, options[field], selection_mode="multi", format_func=show, wrap=True,
                                key=f"metrics_{field}", default=[o for o in default[field] if o in options[field]])
    chosen = [e for e in entries if e["experiment"] in pick["experiment"] and e["model"] in pick["model"]
              and (e["regime"] in pick["regime"] or e["regime"] == "shipped")]
    return chosen, pick


MODEL_ORDER = ("fusion", "image_only", "labs_only", "late_fusion", "gbm_labs")   # the paper's, then the extras
REGIME_ORDER = ("imbalanced", "adasyn", "class_weight")


def _ordered(keys: set, order: tuple) -> list:
    return sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), k))


def _model_chip(model: str) -> str:   # short, so the five fit two rows: 'Fusion', not 'Fusion (image + labs)'
    return res.model_name(model).split(" (")[0]


def _regime_chip(regime: str) -> str:
    return res.regime_name(regime).removesuffix("-balanced")


def about(entries: list[dict], chosen: list[dict]) -> None:
    """One line per chosen experiment (what it measured, counted from its file), and why thresholded
    metrics trail ROC AUC where the test split is rare in pneumonia."""
    lines = res.experiment_lines(entries)
    for x in dict.fromkeys(e["experiment"] for e in chosen):
        st.caption(f"**{res.experiment_label(x)}** — {lines.get(x, '')}")
    for note in res.thresholded_notes(chosen):
        st.caption(f":material/info: {note}")


def table(chosen: list[dict]) -> None:
    """The metrics table, narrow enough for one screen: mean ± sd over runs, or the 95% intervals."""
    ci = st.toggle("95% intervals instead of ± sd", key="metrics_cells")
    frame = res.metrics_table(chosen, cells="ci" if ci else "sd", compact=True)
    st.dataframe(frame, hide_index=True, column_config={"Runs": st.column_config.NumberColumn(width=50)})
    st.caption(("Test metrics as mean [95% CI]: a hierarchical bootstrap of test cases and runs."
                if ci else "Test metrics as mean ± sd over runs; a single run (a shipped bundle) shows its value.")
               + " Curves pool the per-case test probabilities of every run.")


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
def _differences(pairs: list[dict], metric: str, kind: str):
    return (res.model_differences if kind == "model" else res.regime_differences)(pairs, metric)


INTERVAL_WORDS = {res.BOOTSTRAP: "paired bootstrap (2,000 replicates; each resamples the test cases, the same cases "
                                 "for both sides, and each side's runs with replacement, every run at its own "
                                 "threshold), 2.5–97.5 percentiles",
                  res.WELCH: "Welch t-interval over the per-run values (no shared per-case probabilities)"}


def _interval_words(diffs) -> str:
    methods = set(diffs["Interval"]) - {"—"}
    return "95% interval: " + "; ".join(sorted(INTERVAL_WORDS[m] for m in methods) or ["none (one run, no per-case "
                                                                                         "probabilities)"])


def _relabel(fig, left: str, right: str, axis: str):
    """difference_figure speaks of regimes; the same picture for another pair says whose side is whose."""
    for note, text in zip(fig.layout.annotations, (f"← {left} better  ", f"  {right} better →")):
        note.text = text
    fig.update_xaxes(title=axis)
    return fig


def differences(entries: list[dict], pick: dict) -> None:
    """Paired differences on the same test cases: fusion − each other model, then ADASYN − imbalanced."""
    st.subheader("Paired differences")
    metric = st.selectbox("Metric", list(res.TABLE_METRICS), index=1, format_func=res.METRIC_NAMES.get)
    name = res.METRIC_NAMES[metric]
    model_differences(entries, pick, metric, name)
    regime_differences(entries, pick, metric, name)


def model_differences(entries: list[dict], pick: dict, metric: str, name: str) -> None:
    """Fusion − image only, − late fusion and − each shipped bundle, per chosen experiment and regime."""
    st.markdown("**Fusion vs the other models**")
    # every model of the chosen experiments and regimes, whatever the model filter shows; bundles always
    pool = [e for e in entries if e["regime"] == "shipped"
            or (e["experiment"] in pick["experiment"] and e["regime"] in pick["regime"])]
    diffs = _differences(pool, metric, "model")
    shown = diffs.dropna(subset=["Difference"])
    if len(shown):
        several_regimes, several = shown["Regime"].nunique() > 1, shown["Experiment"].nunique() > 1
        shown.insert(0, "Label", [c + (f" · {res.regime_name(r)}" if several_regimes else "") + (f" · {x}" if several else "")
                                  for c, r, x in zip(shown["Comparison"], shown["Regime"], shown["Experiment"])])
        fig = figs.difference_figure(shown, name)
        st.plotly_chart(_relabel(fig, "other model", "fusion", f"{name}: fusion − other model (95% interval)"),
                        config={"displayModeBar": False})
        keep = ["Comparison"] + (["Regime"] if several_regimes else []) + (["Experiment"] if several else [])
        st.dataframe(shown[keep + ["Fusion", "Other", "Difference", "CI low", "CI high"]], hide_index=True,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("Fusion", "Other", "CI low", "CI high")}
                     | {"Difference": st.column_config.NumberColumn(format="%+.3f")})
        st.caption(f"Difference: fusion − the other model of the mean test {name} over runs, on the same test "
                   f"films. {_interval_words(shown)}. An interval that excludes 0 is a difference beyond "
                   "test-set and seed noise.")
    for note in dict.fromkeys(n for n in diffs["Note"] if n):
        st.caption(f":material/block: {note}")
    if not len(diffs):
        st.caption("No fusion entry in the chosen experiments and regimes.")


def regime_differences(entries: list[dict], pick: dict, metric: str, name: str) -> None:
    """ADASYN - imbalanced per model, with its 95% interval, as a figure and a table."""
    st.markdown("**Imbalanced vs ADASYN-balanced**")
    # every regime of the chosen experiments and models, whatever the regime filter above shows
    pairs = [e for e in entries if e["experiment"] in pick["experiment"] and e["model"] in pick["model"]
             and e["regime"] in ("imbalanced", "adasyn")]
    diffs = _differences(pairs, metric, "regime")
    if len(diffs) and diffs["Difference"].notna().any():
        several = diffs["Experiment"].nunique() > 1
        diffs.insert(0, "Label", [res.model_name(m) + (f" · {x}" if several else "")
                                  for x, m in zip(diffs["Experiment"], diffs["Model"])])
        st.plotly_chart(figs.difference_figure(diffs, name), config={"displayModeBar": False})
        diffs["Model"] = [res.model_name(m) for m in diffs["Model"]]
        st.dataframe(diffs.drop(columns=["Label"] + ([] if several else ["Experiment"])), hide_index=True,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("imbalanced", "adasyn", "CI low", "CI high")}
                     | {"Difference": st.column_config.NumberColumn(format="%+.3f")})
        st.caption(f"Difference: ADASYN − imbalanced of the mean test {name} over runs. {_interval_words(diffs)}"
                   ". An interval that excludes 0 is a difference beyond test-set and seed noise.")
    else:
        st.caption("No model has both an imbalanced and an ADASYN entry in the chosen experiments.")


def paper_tables(chosen: list[dict]) -> None:
    """The paper's Tables 1-2, each row beside our matching model and regime (every one of the chosen
    experiments: a paper row names its own model and regime, whatever the filters show)."""
    st.subheader("The paper beside ours")
    st.markdown("**Table 1** · test accuracy and loss (%): each paper row beside our matching model and regime")
    st.dataframe(res.paper_table1(chosen).astype(str), hide_index=True)  # dashes beside numbers: one type
    st.caption(res.LOSS_NOTE + (f" {note}" if (note := res.loss_note(chosen)) else ""))
    st.markdown("**Table 2** · fusion on imbalanced classes, train and test")
    st.dataframe(res.paper_table2(chosen).astype(str), hide_index=True)
    st.caption("Paper: Ivanova et al., 2024 (MIMIC-IV images and labs of the same patients). Ours: open "
               "semi-real pairs, so the numbers are comparable in protocol, not in data. "
               + res.paper_consistency_note())
