"""A self-contained HTML case report: one file, images inlined as base64 PNGs, no external
assets, every text escaped. What a clinician can file or forward after a second opinion."""
from __future__ import annotations

import base64
import io
from datetime import datetime, timezone
from html import escape

import numpy as np
from PIL import Image

from pneumo.inference.disclosure import shown
from pneumo.present import case_words as words
from pneumo.present.app_support import DISCLAIMER
from pneumo.present.lab_display import fmt_number, shap_frame

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1c2430;max-width:960px;
margin:24px auto;padding:0 16px;line-height:1.45}
h1{font-size:1.5rem;margin:0 0 4px}h2{font-size:1.1rem;margin:24px 0 8px;color:#1f5fa8}
.disclaimer{background:#fff4e5;border-left:4px solid #e6a23c;padding:8px 12px;margin:12px 0}
.semi{background:#eef4fb;border-left:4px solid #1f5fa8;padding:8px 12px;margin:12px 0}
.result{font-size:1.3rem;font-weight:600}.PNEUMONIA{color:#c0392b}.NORMAL{color:#2e8b57}
.warn{color:#8a5300}table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #e6ebf1;padding:4px 8px;text-align:left}
.figs{display:flex;gap:12px;flex-wrap:wrap}.figs figure{margin:0;flex:1;min-width:260px}
.figs img{width:100%;border:1px solid #e6ebf1}.muted{color:#5b6776;font-size:.85rem}
.pos{color:#c0392b}.neg{color:#1f5fa8}.outside{color:#1c2430}
"""


def _png_b64(array: np.ndarray, max_side: int = 1024) -> str:
    """float [0,1] gray or uint8 RGB -> base64 PNG, shrunk so the report stays small."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(a)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_case_report(explanation, original_pixels: np.ndarray | None = None,
                       overlay: np.ndarray | None = None, *, example_label: str | None = None,
                       created: datetime | None = None, population: str | None = None) -> str:
    """The case report as one HTML string.

    explanation: a predictor Explanation (result, shap_values, lab_display, contribution).
    original_pixels: the film (H, W) float in [0,1]; overlay: Grad-CAM over it, uint8 RGB.
    example_label: the semi-real wording when the case is a shipped example.
    population: the bundle's intended population in words (e.g. "children aged 1-5, ...")."""
    r = explanation.result
    created = created or datetime.now(timezone.utc)
    model = r.model or {}
    e = escape
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width,initial-scale=1'>",
           f"<title>pneumo case report {e(created.strftime('%Y-%m-%d %H:%M'))}</title>",
           f"<style>{_CSS}</style></head><body>",
           "<h1>pneumo — pneumonia second opinion</h1>",
           f"<p class='muted'>Case report, {e(created.strftime('%Y-%m-%d %H:%M %Z'))}</p>",
           f"<div class='disclaimer'><strong>{e(DISCLAIMER)}</strong> The final judgement rests "
           "with the clinician who examined the patient.</div>"]
    if example_label:
        out.append(f"<div class='semi'>{e(example_label)}</div>")

    show = shown(r)          # outside the intended use: the reason first, a number only if asked
    if show.outside:
        out.insert(out.index("<h1>pneumo — pneumonia second opinion</h1>") + 1,
                   f"<p class='result outside'>{e(words.outside_line(show.lead_reason))}</p>")
    out.append("<h2>Result</h2>")
    out.append(f"<p class='result {e(str(show.label))}'>{e(words.verdict_line(r))}</p>" if show.verdict_colour
               else f"<p class='result outside'>{e(words.number_on_request(r))}</p>" if show.asked
               else "<p>No number is given for a case outside the intended use.</p>")
    if show.probability is not None:
        out.append(f"<p>P(pneumonia) = {r.probability:.3f}; operating threshold {r.threshold:.3f}.</p>")
    out.append(f"<p>{e(words.intended_use_line(r))} The model was validated on "
               f"{e(population or 'its training population')} only.</p>")
    out.append(f"<p>Decision rule: {e(words.rule_sentence(r.threshold))}</p>")
    out.append(f"<p>Uncertainty: {e(str(r.band))} ({e(words.band_meaning(r.band))})"
               + (f"; {e((r.uncertainty or {}).get('words', ''))}" if show.probability is not None else "")
               + f". Validity of the input: {e(str(r.validity))}. Inputs given: {e(words.inputs_given(r))}.</p>")
    sentence = words.attribution_sentence(r) if show.probability is not None else ""
    if sentence:
        out.append(f"<p>{e(sentence)}</p>")
    if r.warnings:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li class='warn'>{e(str(w))}</li>" for w in r.warnings)
                   + "</ul>")
    if getattr(r, "notes", None):
        out.append("<ul>" + "".join(f"<li class='muted'>{e(str(n))}</li>" for n in r.notes) + "</ul>")

    overlay = overlay if show.gradcam else None
    if original_pixels is not None or overlay is not None:
        out.append("<h2>Image</h2><div class='figs'>")
        if original_pixels is not None:
            out.append(f"<figure><img alt='chest X-ray' src='data:image/png;base64,{_png_b64(original_pixels)}'>"
                       "<figcaption class='muted'>The film as read</figcaption></figure>")
        if overlay is not None and show.gradcam:
            out.append(f"<figure><img alt='Grad-CAM overlay' src='data:image/png;base64,{_png_b64(overlay)}'>"
                       "<figcaption class='muted'>Grad-CAM: regions that raised the image score "
                       "(red = more)</figcaption></figure>")
        out.append("</div>")

    if explanation.shap_values and show.probability is not None:
        frame = shap_frame(explanation.shap_values, explanation.lab_display or [])
        out.append("<h2>Labs and what each contributed (SHAP)</h2><table><tr><th>Test</th>"
                   "<th>Contribution to P(pneumonia)</th></tr>")
        for _, row in frame.iterrows():
            cls = "pos" if row["value"] > 0 else "neg"
            out.append(f"<tr><td>{e(row['label'])}</td><td class='{cls}'>{row['value']:+.4f}</td></tr>")
        out.append(f"</table><p class='muted'>{e(words.shap_caption(r, len(frame), len(explanation.lab_display or [])))}"
                   f" With every measured test normal, P would be {explanation.shap_base:.3f}.</p>")
    elif explanation.lab_display:
        out.append("<h2>Labs</h2>")
    if explanation.lab_display:
        out.append("<table><tr><th>Test</th><th>Value</th><th>Unit</th><th>Reference</th><th>Note</th></tr>")
        for d in explanation.lab_display:
            note = "not given" if d.get("imputed") else ("out of range" if d.get("out_of_range") else "")
            ref = f"{fmt_number(d.get('ref_low'))}–{fmt_number(d.get('ref_high'))}"
            out.append(f"<tr><td>{e(str(d.get('name') or d.get('key')))}</td><td>{e(fmt_number(d.get('value')))}"
                       f"</td><td>{e(str(d.get('unit', '')))}</td><td>{e(ref)}</td><td>{e(note)}</td></tr>")
        out.append("</table>")

    out.append("<h2>Model</h2><table>")
    for k, v in (("Name", model.get("name")), ("Version", model.get("version")),
                 ("Weights sha256", model.get("weights_sha256")),
                 ("Image digest", r.image_digest)):
        out.append(f"<tr><th>{e(k)}</th><td>{e(str(v) if v is not None else '—')}</td></tr>")
    out.append("</table>")
    out.append(f"<p class='muted'>{e(DISCLAIMER)} Generated by pneumo. No patient identifiers from the "
               "file's header are included in this report, but text burned into the film itself (names, "
               "dates, markers) is not removed: check the image before sharing the report.</p></body></html>")
    return "\n".join(out)
