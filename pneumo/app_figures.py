"""The app's figures (plotly, imported lazily so the library never pays for it): the
probability bar, SHAP bars, ROC/PR/calibration curves and confusion matrices. One palette."""
from __future__ import annotations

import numpy as np
import pandas as pd

# Colours shared by every figure: one calm blue, a warm red for pneumonia, gray for normal.
BLUE, RED, GREEN, GRAY = "#1f5fa8", "#c0392b", "#2e8b57", "#8a96a3"


def _layout(fig, height: int):
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), paper_bgcolor="white",
                      plot_bgcolor="white", font=dict(size=13))
    return fig


def probability_figure(probability: float, threshold: float, label: str):
    """A 0-1 bar with the operating threshold marked."""
    import plotly.graph_objects as go

    colour = RED if label == "PNEUMONIA" else GREEN
    fig = go.Figure(go.Bar(x=[probability], y=["P(pneumonia)"], orientation="h", marker_color=colour,
                           text=[f"{probability:.2f}"], textposition="outside", width=0.5))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#1c2430",
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    fig.update_xaxes(range=[0, 1.08], tickvals=[0, .25, .5, .75, 1], gridcolor="#e6ebf1")
    fig.update_yaxes(showticklabels=False)
    return _layout(fig, 140)


def shap_figure(frame: pd.DataFrame, top: int = 12):
    """Horizontal SHAP bars, largest on top; red pushes towards pneumonia."""
    import plotly.graph_objects as go

    f = frame.head(top).iloc[::-1]
    colours = [RED if v > 0 else BLUE for v in f["value"]]
    fig = go.Figure(go.Bar(x=f["value"], y=f["label"], orientation="h", marker_color=colours,
                           text=[f"{v:+.3f}" for v in f["value"]], textposition="outside",
                           cliponaxis=False))
    # scale to the largest bar (a saturated case has tiny values that a fixed axis would hide)
    reach = max(float(f["value"].abs().max()) if len(f) else 0.0, 0.005) * 1.35
    fig.update_xaxes(title="change in P(pneumonia)", zeroline=True, zerolinecolor="#1c2430",
                     gridcolor="#e6ebf1", range=[-reach, reach])
    return _layout(fig, 60 + 26 * len(f))


def curve_figure(curves: list[dict], kind: str):
    """ROC / PR / calibration lines, one per (experiment, model, regime)."""
    import plotly.graph_objects as go

    titles = {"roc": ("False positive rate", "True positive rate"),
              "pr": ("Recall", "Precision"),
              "calibration": ("Mean predicted probability", "Observed fraction with pneumonia")}
    fig = go.Figure()
    if kind in ("roc", "calibration"):
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color=GRAY),
                                 name="chance" if kind == "roc" else "perfect", hoverinfo="skip"))
    for c in curves:
        fig.add_trace(go.Scatter(x=c["x"], y=c["y"], mode="lines+markers" if kind == "calibration" else "lines",
                                 name=c["name"]))
    fig.update_xaxes(title=titles[kind][0], range=[0, 1], gridcolor="#e6ebf1")
    fig.update_yaxes(title=titles[kind][1], range=[0, 1.02], gridcolor="#e6ebf1")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _layout(fig, 420)


def confusion_figure(matrix: np.ndarray, title: str):
    import plotly.graph_objects as go

    names = ["NORMAL", "PNEUMONIA"]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}"))
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="true", autorange="reversed")
    fig.update_layout(title=dict(text=title, font=dict(size=13)))
    return _layout(fig, 300)
