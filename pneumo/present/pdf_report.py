"""report.pdf: the HTML case report's content as a PDF (reportlab), for a record system that files
PDFs. reportlab is a pure-Python wheel; weasyprint would need the system's pango and cairo.
The same words as the HTML report (pneumo.present.case_words); no patient identifier."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.inference.disclosure import shown
from pneumo.present import case_words as words
from pneumo.present.app_support import DISCLAIMER
from pneumo.present.lab_display import fmt_number, shap_frame

_FONTS = Path("/usr/share/fonts/truetype/dejavu")     # Unicode text where present, else Helvetica
INK, BLUE, RED, GREEN, AMBER = "#1c2430", "#1f5fa8", "#c0392b", "#2e8b57", "#8a5300"


def _fonts() -> tuple[str, str]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold = _FONTS / "DejaVuSans.ttf", _FONTS / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "Helvetica", "Helvetica-Bold"
    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
    return "DejaVuSans", "DejaVuSans-Bold"


def _styles():
    from reportlab.lib.styles import ParagraphStyle

    font, bold = _fonts()
    base = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13, textColor=INK, spaceAfter=4)
    return {
        "body": base, "font": font, "bold": bold,
        "title": ParagraphStyle("title", base, fontName=bold, fontSize=16, leading=20, spaceAfter=2),
        "verdict": ParagraphStyle("verdict", base, fontName=bold, fontSize=13, leading=17, spaceAfter=6),
        "h2": ParagraphStyle("h2", base, fontName=bold, fontSize=11.5, textColor=BLUE, spaceBefore=8),
        "muted": ParagraphStyle("muted", base, fontSize=8, leading=10.5, textColor="#5b6776"),
        "warn": ParagraphStyle("warn", base, textColor=AMBER),
        "pos": ParagraphStyle("pos", base, textColor=RED), "neg": ParagraphStyle("neg", base, textColor=BLUE),
        "digest": ParagraphStyle("digest", base, fontSize=7.5, leading=10),
        "box": ParagraphStyle("box", base, backColor="#fff4e5", borderColor="#e6a23c", borderWidth=0.8,
                              borderPadding=5, spaceBefore=4, spaceAfter=8),
        "semi": ParagraphStyle("semi", base, backColor="#eef4fb", borderColor=BLUE, borderWidth=0.8,
                               borderPadding=5, spaceAfter=8),
    }


def _image(array: np.ndarray, width: float, max_side: int = 900):
    """A figure for the page: float [0,1] gray or uint8 RGB, shrunk so the PDF stays small (JPEG)."""
    from reportlab.platypus import Image as Flowable

    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(a).convert("RGB")
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    buf.seek(0)
    return Flowable(buf, width=width, height=width * img.height / img.width)


def _table(rows, widths, s, header=True):
    """rows of cells: a str, or (str, style name) for one cell in another style."""
    from reportlab.platypus import Paragraph, Table, TableStyle

    cells = [[Paragraph(escape(str(c[0])), s[c[1]]) if isinstance(c, tuple) else Paragraph(escape(str(c)), s["body"])
              for c in row] for row in rows]
    t = Table(cells, colWidths=widths, hAlign="LEFT")
    style = [("LINEBELOW", (0, 0), (-1, -1), 0.4, "#e6ebf1"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]
    if header:
        style.append(("FONTNAME", (0, 0), (-1, 0), s["bold"]))
    t.setStyle(TableStyle(style))
    return t


def render_case_pdf(explanation, original_pixels: np.ndarray | None = None,
                    overlay: np.ndarray | None = None, *, example_label: str | None = None,
                    created: datetime | None = None, population: str | None = None) -> bytes:
    """The case report as PDF bytes; the arguments are render_case_report's."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table

    s, r, e = _styles(), explanation.result, escape
    created = created or datetime.now(timezone.utc)
    model = r.model or {}
    show = shown(r)          # outside the intended use: the reason first, a number only if asked
    colour = {"PNEUMONIA": RED, "NORMAL": GREEN}.get(show.label, INK) if show.verdict_colour else INK
    width = A4[0] - 36 * mm
    story = [Paragraph("pneumo — pneumonia second opinion", s["title"])]
    if show.outside:
        story.append(Paragraph(e(words.outside_line(show.lead_reason)), s["verdict"]))
    story += [Paragraph(e(f"Case report, {created.strftime('%Y-%m-%d %H:%M %Z')}"), s["muted"]),
              Paragraph(f"<b>{e(DISCLAIMER)}</b> The final judgement rests with the clinician who "
                        "examined the patient.", s["box"])]
    if example_label:
        story.append(Paragraph(e(example_label), s["semi"]))
    story.append(Paragraph("Result", s["h2"]))
    if show.verdict_colour:
        story.append(Paragraph(f"<font color='{colour}'>{e(words.verdict_line(r))}</font>", s["verdict"]))
    elif show.asked:
        story.append(Paragraph(e(words.number_on_request(r)), s["body"]))
    else:
        story.append(Paragraph("No number is given for a case outside the intended use.", s["body"]))
    if show.probability is not None:
        story.append(Paragraph(f"P(pneumonia) = {r.probability:.3f}; operating threshold {r.threshold:.3f}.", s["body"]))
    story += [Paragraph(e(f"{words.intended_use_line(r)} The model was validated on "
                          f"{population or 'its training population'} only."), s["body"]),
              Paragraph(e(f"Decision rule: {words.rule_sentence(r.threshold)}"), s["body"]),
              Paragraph(e(f"Uncertainty: {r.band} ({words.band_meaning(r.band)})"
                          + (f"; {(r.uncertainty or {}).get('words', '')}" if show.probability is not None else "")
                          + f". Validity of the input: {r.validity}. Inputs given: {words.inputs_given(r)}."), s["body"])]
    if show.probability is not None and words.attribution_sentence(r):
        story.append(Paragraph(e(words.attribution_sentence(r)), s["body"]))
    if r.warnings:
        story.append(Paragraph("Warnings", s["h2"]))
        story += [Paragraph("• " + e(str(w)), s["warn"]) for w in r.warnings]
    story += [Paragraph("• " + e(str(n)), s["muted"]) for n in (getattr(r, "notes", None) or [])]

    figures = [(a, cap) for a, cap in ((original_pixels, "The film as read"),
                                       (overlay if show.gradcam else None, "Grad-CAM: regions that raised the image score (red = more)"))
               if a is not None]
    if figures:
        story.append(Paragraph("Image", s["h2"]))
        w = (width - 6 * mm) / 2
        story.append(Table([[_image(a, w) for a, _ in figures],
                            [Paragraph(e(cap), s["muted"]) for _, cap in figures]],
                           colWidths=[w + 3 * mm] * len(figures), hAlign="LEFT",
                           style=[("VALIGN", (0, 0), (-1, -1), "TOP")]))

    if explanation.shap_values and show.probability is not None:
        frame = shap_frame(explanation.shap_values, explanation.lab_display or [])
        story.append(Paragraph("Labs and what each contributed (SHAP)", s["h2"]))
        story.append(_table([["Test", "Contribution to P(pneumonia)"]] +
                            [[row["label"], (f"{row['value']:+.4f}", "pos" if row["value"] > 0 else "neg" if row["value"] < 0 else "body")]
                             for _, row in frame.iterrows()],
                            [width * 0.6, width * 0.4], s))
        story.append(Paragraph(e(f"{words.shap_caption(r, len(frame), len(explanation.lab_display or []))} "
                                 f"With every measured test normal, P would be {explanation.shap_base:.3f}."), s["muted"]))
    if explanation.lab_display:
        story.append(Paragraph("Labs", s["h2"]))
        rows = [["Test", "Value", "Unit", "Reference", "Note"]]
        for d in explanation.lab_display:
            note = "not given" if d.get("imputed") else ("out of range" if d.get("out_of_range") else "")
            rows.append([d.get("name") or d.get("key"), fmt_number(d.get("value")), d.get("unit", ""),
                         f"{fmt_number(d.get('ref_low'))}–{fmt_number(d.get('ref_high'))}", note])
        story.append(_table(rows, [width * f for f in (0.36, 0.14, 0.16, 0.18, 0.16)], s))

    story.append(Paragraph("Model", s["h2"]))
    story.append(_table([[k, (str(v) if v is not None else "—", style)] for k, v, style in (
        ("Name", model.get("name"), "body"), ("Version", model.get("version"), "body"),
        ("Weights sha256", model.get("weights_sha256"), "digest"), ("Image digest", r.image_digest, "digest"))],
        [width * 0.22, width * 0.78], s, header=False))
    story.append(Paragraph(e(f"{DISCLAIMER} Generated by pneumo. No patient identifiers from the file's header "
                             "are included in this report, but text burned into the film itself (names, dates, "
                             "markers) is not removed: check the image before sharing the report."), s["muted"]))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title="pneumo case report", author="pneumo",
                            subject="Pneumonia second opinion", creator="pneumo")
    stamp = created.strftime("%Y-%m-%d %H:%M %Z")

    def footer(canvas, document):    # every page says what it is: a page may travel alone
        canvas.saveState()
        canvas.setFont(s["font"], 7.5)
        canvas.setFillColor("#5b6776")
        canvas.drawString(18 * mm, 10 * mm, f"pneumo case report, {stamp} · {DISCLAIMER}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
