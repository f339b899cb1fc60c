"""The app's figures (plotly, imported lazily so the library never pays for it): the
probability bar, SHAP bars, ROC/PR/calibration curves and confusion matrices. One palette."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pneumo.present.lab_effects import axis_reach

# Colours shared by every figure: one calm blue, a warm red for pneumonia, gray for normal.
BLUE, RED, GREEN, GRAY = "#1f5fa8", "#c0392b", "#2e8b57", "#8a96a3"
# Curves: one fixed qualitative palette (Okabe-Ito, colour-blind safe), one colour per model in
# every plot; the line's dash says the regime, a marker the experiment (when there are several).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933")
MODEL_COLOURS = {"fusion": PALETTE[0], "image_only": PALETTE[1], "labs_only": PALETTE[2],
                 "late_fusion": PALETTE[3], "gbm_labs": PALETTE[4]}
REGIME_DASH = {"imbalanced": "solid", "shipped": "solid", "adasyn": "dash", "class_weight": "dot"}
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross")


def model_colours(models) -> dict[str, str]:
    """A colour per model: the known ones fixed, others from the rest of PALETTE in name order."""
    out = {m: MODEL_COLOURS[m] for m in models if m in MODEL_COLOURS}
    spare = [c for c in PALETTE if c not in MODEL_COLOURS.values()]
    for i, m in enumerate(sorted(set(models) - set(out))):
        out[m] = spare[i % len(spare)]
    return out


def _styles(curves: list[dict]) -> list[dict]:
    """Colour by model, dash by regime, marker by experiment (only when several are shown)."""
    colours = model_colours([c.get("model", c["name"]) for c in curves])
    regimes = sorted({c.get("regime", "") for c in curves})
    experiments = sorted({c.get("experiment", "") for c in curves})
    out = []
    for c in curves:
        regime = c.get("regime", "")
        dash = REGIME_DASH.get(regime, _DASHES[regimes.index(regime) % len(_DASHES)])
        style = {"line": dict(color=colours[c.get("model", c["name"])], dash=dash, width=2.2)}
        if len(experiments) > 1:
            style["marker"] = dict(symbol=_SYMBOLS[experiments.index(c.get("experiment", "")) % len(_SYMBOLS)],
                                   size=7, maxdisplayed=12)
        out.append(style)
    return out


def _layout(fig, height: int):
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), paper_bgcolor="white",
                      plot_bgcolor="white", font=dict(size=13))
    return fig


def probability_figure(probability: float, threshold: float, label: str | None):
    """A 0-1 bar with the operating threshold marked; label None: no verdict, a neutral grey bar."""
    import plotly.graph_objects as go

    colour = RED if label == "PNEUMONIA" else GREEN if label == "NORMAL" else "#8a94a3"
    fig = go.Figure(go.Bar(x=[probability], y=["P(pneumonia)"], orientation="h", marker_color=colour,
                           text=[f"{probability:.2f}"], textposition="outside", width=0.5))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#1c2430",
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    fig.update_xaxes(range=[0, 1.08], tickvals=[0, .25, .5, .75, 1], gridcolor="#e6ebf1")
    fig.update_yaxes(showticklabels=False)
    return _layout(fig, 140)


def shap_figure(frame: pd.DataFrame, top: int = 12):
    """Horizontal lab bars on the probability scale, largest on top; red pushes towards pneumonia.
    The axis spans at least +-MIN_REACH, so bars of a few thousandths look as small as they are."""
    import plotly.graph_objects as go

    f = frame.head(top).iloc[::-1]
    colours = [RED if v > 0 else BLUE for v in f["value"]]
    fig = go.Figure(go.Bar(x=f["value"], y=f["label"], orientation="h", marker_color=colours,
                           text=[f"{v:+.3f}" for v in f["value"]], textposition="outside",
                           cliponaxis=False))
    reach = axis_reach(f["value"])
    ticks = [-reach, -reach / 2, 0.0, reach / 2, reach]
    fig.update_xaxes(title="change in P(pneumonia): normal → this value", zeroline=True,
                     zerolinecolor="#1c2430", gridcolor="#e6ebf1", range=[-reach * 1.02, reach * 1.02],
                     tickvals=ticks, ticktext=[f"{t:+.2g}" if t else "0" for t in ticks])
    return _layout(fig, 80 + 26 * len(f))


def curve_figure(curves: list[dict], kind: str):
    """ROC / PR / calibration lines, one per (experiment, model, regime): colour per model, dash
    per regime, legend from each curve's 'label' (its 'name' where it has none)."""
    import plotly.graph_objects as go

    titles = {"roc": ("False positive rate", "True positive rate"),
              "pr": ("Recall", "Precision"),
              "calibration": ("Mean predicted probability", "Observed fraction with pneumonia")}
    fig = go.Figure()
    if kind in ("roc", "calibration"):
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color=GRAY),
                                 name="chance" if kind == "roc" else "perfect", hoverinfo="skip"))
    several = len({c.get("experiment", "") for c in curves}) > 1
    for c, style in zip(curves, _styles(curves)):
        markers = kind == "calibration" or several
        fig.add_trace(go.Scatter(x=c["x"], y=c["y"], mode="lines+markers" if markers else "lines",
                                 name=c.get("label", c["name"]), line=style["line"],
                                 marker=style.get("marker", dict(size=7)),
                                 hovertemplate="%{fullData.name}<br>x %{x:.3f}, y %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title=titles[kind][0], range=[0, 1], gridcolor="#e6ebf1")
    fig.update_yaxes(title=titles[kind][1], range=[0, 1.02], gridcolor="#e6ebf1")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, font=dict(size=13)))
    return _layout(fig, 460 + 22 * max(0, len(curves) - 3))


def confusion_figure(matrix: np.ndarray, title: str):
    import plotly.graph_objects as go

    names = ["NORMAL", "PNEUMONIA"]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}"))
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="true", autorange="reversed")
    fig.update_layout(title=dict(text=title, font=dict(size=13)))
    return _layout(fig, 300)


def difference_figure(frame: pd.DataFrame, metric_name: str):
    """Each model's ADASYN - imbalanced difference as a dot with its 95% interval; 0 marked.
    `frame`: pneumo.experiments.results.regime_differences plus a 'Label' column (the row's name)."""
    import plotly.graph_objects as go

    f = frame.dropna(subset=["Difference"]).iloc[::-1]
    colours = model_colours(list(f["Model"]))
    has = f["CI low"].notna() & f["CI high"].notna()
    fig = go.Figure(go.Scatter(
        x=f["Difference"], y=f["Label"], mode="markers",
        marker=dict(size=11, color=[colours[m] for m in f["Model"]]),
        error_x=dict(type="data", symmetric=False, thickness=2, width=6, color="#4a5563",
                     array=np.where(has, f["CI high"] - f["Difference"], 0),
                     arrayminus=np.where(has, f["Difference"] - f["CI low"], 0)),
        customdata=np.stack([f["CI low"], f["CI high"]], axis=-1) if len(f) else None,
        hovertemplate="%{y}: %{x:+.3f} [%{customdata[0]:+.3f}, %{customdata[1]:+.3f}]<extra></extra>"))
    fig.add_vline(x=0, line_color="#1c2430", line_dash="dash")
    for x, anchor, text in ((0, "right", "← imbalanced better  "), (0, "left", "  ADASYN better →")):
        fig.add_annotation(x=x, y=1, yref="paper", yanchor="bottom", xanchor=anchor, text=text,
                           showarrow=False, font=dict(size=12, color="#4a5563"))
    fig.update_yaxes(tickfont=dict(size=13, color="#1c2430"))
    fig.update_xaxes(title=f"{metric_name}: ADASYN − imbalanced (95% interval)", zeroline=False,
                     gridcolor="#e6ebf1")
    return _layout(fig, 110 + 42 * len(f))
