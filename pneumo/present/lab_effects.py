"""What the labs did, in words and numbers a screen shows: the bars (each test against a healthy
value), whether they matter at all, where a bar and the what-if cannot agree, and the what-if's
values and its change. No streamlit: pages/ui/lab_effects.py only renders these."""
from __future__ import annotations

import math

import pandas as pd

from pneumo.data.labs.healthy import healthy_value
from pneumo.present.lab_display import fmt_number, short_name

NEGLIGIBLE = 0.01     # the labs moved P by less than this: the answer is the film's (or the labs' baseline)
MIN_REACH = 0.05      # the bar chart spans at least +-0.05 of probability, so a tiny bar looks tiny
FLOOR = 0.001         # a bar or a what-if change smaller than this carries no sign worth reading
SHOWN = 3             # decimals of P on the what-if: a change that rounds to 0 here is "no change"


def effects_frame(expl) -> pd.DataFrame:
    """One row per measured test: key, a label like 'Sodium 131 mEq/L (normal 140)', the bar's value,
    largest |value| first."""
    info = {d.get("key"): d for d in expl.lab_display or []}
    rows = []
    for key, val in expl.shap_values.items():
        d = info.get(key, {})
        ref = (expl.lab_reference or {}).get(key)
        unit = f" {d['unit']}" if d.get("unit") else ""
        label = f"{short_name(key, d.get('name'))} {fmt_number(d.get('value'))}{unit}"
        rows.append({"key": key, "label": label + (f" (normal {fmt_number(ref)})" if ref is not None else ""),
                     "value": float(val)})
    frame = pd.DataFrame(rows, columns=["key", "label", "value"])
    return frame.reindex(frame["value"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def axis_reach(values) -> float:
    """Half the bar chart's span: the largest bar with room for its number, never under MIN_REACH."""
    largest = max((abs(float(v)) for v in values), default=0.0)
    return max(largest * 1.35, MIN_REACH)


def caption(expl) -> str:
    """What the bars are, in one paragraph: the reference, the sum, the colours."""
    r = expl.result
    film = "the film and " if r.modalities.get("image") else ""
    return (f"Each bar: what moving one test from a normal value to this patient's did to P(pneumonia), "
            f"with {film}the other tests as given. Red raises P, blue lowers it. With every measured test "
            f"normal, P would be {expl.shap_base:.3f}; the bars add up to the difference "
            f"({_signed(r.probability - expl.shap_base)}). Tests not given have no bar "
            "(the model reads them as not measured). Normal values: mid-reference range.")


def negligible_line(expl) -> str | None:
    """One line when the labs hardly moved the answer, so small bars are not read as evidence."""
    r = expl.result
    step = float(r.modality_contribution.get("labs", 0.0))
    against_normal = abs(r.probability - expl.shap_base)
    if not r.modalities.get("labs") or abs(step) >= NEGLIGIBLE or against_normal >= NEGLIGIBLE:
        return None
    whose = "the film's" if r.modalities.get("image") else "the model's baseline"
    return (f"The labs moved P by less than {NEGLIGIBLE:g} ({_signed(step)} given vs. not measured; "
            f"{_signed(r.probability - expl.shap_base)} against a normal panel): this answer is {whose}.")


def disagreeing(expl, floor: float = FLOOR) -> list[str]:
    """Tests whose bar and 'back to normal' change point opposite ways, both above the noise
    floor: the test's effect depends on the other values (an interaction)."""
    out = []
    for key, bar in expl.shap_values.items():
        back = (expl.back_to_normal or {}).get(key)
        if back is None:
            continue
        limit = floor + 3 * (expl.shap_noise or {}).get(key, 0.0)
        if abs(bar) > limit and abs(back) > limit and (bar > 0) != (back > 0):
            out.append(key)
    return out


def interaction_line(expl, panel) -> str | None:
    """One line naming the tests whose bar and what-if disagree in sign, and why; None if none."""
    keys = disagreeing(expl)
    if not keys:
        return None
    names = ", ".join(short_name(k, panel[k].name) for k in keys)
    return (f"For {names} the bar and the what-if point opposite ways: its effect depends on the other "
            "values (an interaction); the bar is its average share, the what-if the change with the "
            "others as they are.")


def change_text(delta: float) -> str | None:
    """The what-if's change as shown (3 decimals), or None where it rounds to 0 ('no change')."""
    shown = round(float(delta), SHOWN)
    return None if shown == 0 else f"{shown:+.{SHOWN}f}"


def what_if_values(test, current: float | None = None, age: float | None = None) -> list[float]:
    """The what-if's values for one test, from its plausible low to its plausible high (the lab
    schema's, the one place they are kept): fine steps around the reference range, steps growing
    with the distance beyond it, the patient's value and the normal value included."""
    lo_p, hi_p = float(test.plaus_low), float(test.plaus_high)
    lo = float(test.ref_low) if test.ref_low is not None else lo_p
    hi = float(test.ref_high) if test.ref_high is not None else hi_p
    span = max(hi - lo, 1e-6)
    fine = _nice(span / 20)
    a, b = max(lo - 2 * span, lo_p), min(hi + 2 * span, hi_p)
    values = {a, b, lo_p, hi_p, healthy_value(test, age)}
    v = math.ceil(a / fine) * fine
    while v < b:
        values.add(v)
        v += fine
    v = b
    while v < hi_p:
        step = _nice(max(fine, (v - hi) / 8))
        v = min((math.floor(v / step + 1e-9) + 1) * step, hi_p)
        values.add(v)
    v = a
    while v > lo_p:
        step = _nice(max(fine, (lo - v) / 8))
        v = max((math.ceil(v / step - 1e-9) - 1) * step, lo_p)
        values.add(v)
    if current is not None and lo_p <= current <= hi_p:
        values.add(float(current))
    return sorted({float(f"{x:.6g}") for x in values})


def nearest(values: list[float], x: float) -> float:
    return min(values, key=lambda v: abs(v - x))


def _nice(x: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at least x."""
    exp = 10 ** math.floor(math.log10(x))
    return float(f"{next(m * exp for m in (1, 2, 5, 10) if m * exp >= x - 1e-12):.6g}")


def _signed(x: float) -> str:
    """+0.04, +0.003, or 0.000 where three decimals round to nothing (never a '-0.000')."""
    if round(x, 3) == 0:
        return "0.000"
    return f"{x:+.2f}" if abs(x) >= 0.005 else f"{x:+.3f}"
