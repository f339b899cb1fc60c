"""The film with its Grad-CAM heat map as one small HTML widget whose opacity slider blends in
the browser: moving it sends nothing to the server and recomputes nothing.

The browser's blend is the report's: a colour layer whose alpha is the heat, at the slider's
opacity, over the grey film, which is what pneumo.explain.attribution.overlay composes in PIL."""
from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image

from pneumo.explain.attribution import colour_bar, heat_layer

DEFAULT_OPACITY = 0.45


def png_data_uri(pixels: np.ndarray) -> str:
    """uint8 (H, W), (H, W, 3) or (H, W, 4) -> a data: URI of its PNG."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


NO_REGION = "No region raised the score (the film reads as normal)"
GRADCAM_CAVEAT = ("Grad-CAM shows which region moved the score, not a lesion map: on pneumonia test films about "
                  "60% of the heat lies over the lung fields and 15% on the central strip (mediastinum, spine); read a hot "
                  "spot outside the lungs with care.")


def no_region(heat: np.ndarray | None, floor: float = 1e-3) -> bool:
    """Whether no part of the film raised the score: Grad-CAM keeps only positive influence (ReLU)
    and scales by its maximum, so such a map is all zeros, which would draw as a bare film."""
    return heat is not None and float(np.max(heat, initial=0.0)) <= floor


def _bar_gradient(stops: int = 11) -> str:
    """The heat layer's colour scale as a CSS gradient, top = the film's strongest heat."""
    strip = colour_bar(stops, 1)[0]
    colours = [f"rgb({r},{g},{b}) {100 * i / (stops - 1):.0f}%" for i, (r, g, b) in enumerate(strip[::-1])]
    return "linear-gradient(to bottom, " + ", ".join(colours) + ")"


def widget_height(film_shape: tuple[int, int], width: int = 460, max_image: int = 380) -> int:
    """The iframe height the widget needs at about this width: the image at its own aspect (no
    more than max_image tall), then the caption and the slider right under it."""
    h, w = film_shape[:2]
    return int(min(max_image, (width - 70) * h / max(w, 1))) + 86


def blend_widget(film: np.ndarray, heat: np.ndarray, opacity: float = DEFAULT_OPACITY,
                 caption: str = "Grad-CAM: warmer = raised the pneumonia score", height: int = 380) -> str:
    """A self-contained HTML page: the film (H, W) in [0, 1], the heat layer over it, a numbered
    colour bar beside it (0 to 1 of this film's strongest heat), and under the image the caption and
    a range input that sets the layer's CSS opacity. film and heat must have the same shape. A map
    with no heat says so over the film instead of drawing a bare film (see no_region)."""
    if film.shape != heat.shape:
        raise ValueError(f"film {film.shape} and heat {heat.shape} differ in shape")
    grey = (np.clip(film, 0, 1) * 255).astype(np.uint8)
    start = int(round(float(np.clip(opacity, 0, 1)) * 100))
    empty = no_region(heat)
    h, w = film.shape[:2]
    note = f'<div class="note">{html.escape(NO_REGION)}</div>' if empty else ""
    return f"""<!doctype html><html><head><style>
body {{ margin: 0; font-family: "Source Sans Pro", sans-serif; color: #31333f; font-size: 14px; }}
.row {{ display: flex; gap: 8px; align-items: stretch; }}
.stack {{ position: relative; flex: 1; aspect-ratio: {w} / {h}; max-height: {int(height)}px; }}
.stack img {{ position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; object-position: center top; }}
.note {{ position: absolute; left: 6%; right: 6%; top: 42%; background: rgba(255,255,255,.9); color: #1c2430;
  border-radius: 4px; padding: 6px 8px; text-align: center; font-size: 13px; }}
.bar {{ display: flex; gap: 4px; font-size: 11px; color: #5b6776; }}
.grad {{ width: 12px; background: {_bar_gradient()}; border: 1px solid #c9d1db; border-radius: 2px; }}
.ticks {{ display: flex; flex-direction: column; justify-content: space-between; }}
label {{ display: flex; align-items: center; gap: 8px; margin-top: 4px; }}
input {{ flex: 1; accent-color: #1f5fa6; }}
.cap {{ color: #6b6f7b; font-size: 13px; text-align: center; margin-top: 4px; }}
</style></head><body>
<div class="row"><div class="stack"><img alt="The film as read" src="{png_data_uri(grey)}">
<img id="heat" alt="Grad-CAM heat map" src="{png_data_uri(heat_layer(heat))}" style="opacity:{start / 100:.2f}">{note}</div>
<div class="bar" title="Heat as a share of this film's strongest heat" aria-label="colour scale">
<div class="grad"></div><div class="ticks"><span>1 (max)</span><span>0.75</span><span>0.5</span><span>0.25</span><span>0</span></div></div></div>
<div class="cap">{html.escape(caption)}</div>
<label for="opacity">Heat-map opacity <input id="opacity" type="range" min="0" max="100" step="5" value="{start}"
 oninput="document.getElementById('heat').style.opacity = this.value / 100;
          document.getElementById('shown').textContent = (this.value / 100).toFixed(2);">
<span id="shown">{start / 100:.2f}</span></label>
</body></html>"""
