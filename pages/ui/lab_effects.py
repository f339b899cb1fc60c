"""What the labs contributed, on the Second opinion page: the bars (each measured test against a
normal value) and the what-if. The words, numbers and ranges are pneumo.present.lab_effects';
this only renders them."""
from __future__ import annotations

import streamlit as st

from pneumo.data.labs.healthy import healthy_value
from pneumo.errors import PneumoError
from pneumo.present import figures as figs
from pneumo.present import lab_display
from pneumo.present import lab_effects as effects
from pneumo.present.text_safe import md_escape

ss = st.session_state


def lab_effects(pred, case, expl, *, label_words: bool = True) -> None:
    """The bars with what they mean, one line when the labs hardly matter or a bar and the what-if
    cannot agree, and the what-if beside them."""
    st.subheader("What the labs contributed")
    if not expl.shap_values:
        st.caption("No labs given, so there is nothing to attribute here.")
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        line = effects.negligible_line(expl)
        if line:
            st.info(line, icon=":material/info:")
        frame = effects.effects_frame(expl)
        st.plotly_chart(figs.shap_figure(frame), config={"displayModeBar": False})
        missing = len(expl.lab_display or []) - len(frame)
        st.caption(effects.caption(expl) + (f" ({missing} tests not given.)" if missing else ""))
        disagree = effects.interaction_line(expl, pred.panel)
        if disagree:
            st.caption(":material/sync_problem: " + md_escape(disagree))
    with right:
        what_if(pred, case, expl, label_words=label_words)


@st.fragment
def what_if(pred, case, expl, *, label_words: bool = True) -> None:
    """Change one lab and see P and the rule's label move. A fragment: a step of the slider (a click,
    a drag, each arrow-key press) reruns only this, in milliseconds, so its answer keeps up."""
    r = expl.result
    if ss.get("whatif_for") != id(expl):        # a new case: every slider starts at its own value again
        for key in [k for k in ss if str(k).startswith("whatif_") and k != "whatif_lab"]:
            del ss[key]
        ss["whatif_for"] = id(expl)
    st.markdown("**What if a lab were different?**")
    keys = list(pred.panel.keys)
    values = case.labs.values if case.labs is not None else {}
    ranked = sorted(expl.shap_values, key=lambda k: -abs(expl.shap_values[k]))
    default = ranked[0] if ranked else keys[0]
    k = st.selectbox("Lab", keys, index=keys.index(default), key="whatif_lab",
                     format_func=lambda k: f"{pred.panel[k].name} ({pred.panel[k].display_unit})")
    t = pred.panel[k]
    age = case.age
    current, normal = values.get(k), healthy_value(t, age)
    options = effects.what_if_values(t, current, age)
    start = effects.nearest(options, current if current is not None else normal)
    new = st.select_slider(f"{lab_display.short_name(t.key, t.name)} ({t.display_unit})", options=options,
                           value=start, key=f"whatif_{k}", format_func=lab_display.fmt_number,
                           help=f"Now {lab_display.fmt_number(current) if current is not None else 'not given'}; "
                                f"normal {lab_display.fmt_number(normal)}; from "
                                f"{lab_display.fmt_number(options[0])} to {lab_display.fmt_number(options[-1])} "
                                "(the plausible range). Arrow keys step through the values.")
    try:
        answer = pred.what_if(case, {k: float(new)})
        back = pred.what_if(case, {k: normal}) if current is not None else None
    except PneumoError as err:
        st.error(md_escape(str(err)))
        return
    said = answer["label"] if label_words else "not validated for this case"   # outside: the number only
    change = effects.change_text(answer["probability"] - r.probability)
    st.metric(f"With this value: {said}", f"P {answer['probability']:.3f}",
              delta=change or "no change", delta_color="inverse" if change else "off",
              delta_arrow="auto" if change else "off",
              help=f"The same rule: PNEUMONIA at P >= {answer['threshold']:.2f}.")
    lines = [f"At {lab_display.short_name(t.key, t.name)} {lab_display.fmt_number(new)}: {said} at threshold "
             f"{answer['threshold']:.2f} (the film and every other value unchanged)."]
    if back is not None:
        moved = effects.change_text(back["probability"] - r.probability)
        lines.append(f"Back to normal ({lab_display.fmt_number(normal)}): P {back['probability']:.3f} "
                     f"({moved or 'no change'}); this test's bar: {expl.shap_values.get(k, 0.0):+.3f}.")
    st.caption("  \n".join(lines))
