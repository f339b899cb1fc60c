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

from pneumo.explain.attribution import heat_layer

DEFAULT_OPACITY = 0.45


def png_data_uri(pixels: np.ndarray) -> str:
    """uint8 (H, W), (H, W, 3) or (H, W, 4) -> a data: URI of its PNG."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def blend_widget(film: np.ndarray, heat: np.ndarray, opacity: float = DEFAULT_OPACITY,
                 caption: str = "Grad-CAM: warmer = raised the pneumonia score", height: int = 380) -> str:
    """A self-contained HTML page: the film (H, W) in [0, 1], the heat layer over it, and a range
    input that sets the layer's CSS opacity. film and heat must have the same shape."""
    if film.shape != heat.shape:
        raise ValueError(f"film {film.shape} and heat {heat.shape} differ in shape")
    grey = (np.clip(film, 0, 1) * 255).astype(np.uint8)
    start = int(round(float(np.clip(opacity, 0, 1)) * 100))
    return f"""<!doctype html><html><head><style>
body {{ margin: 0; font-family: "Source Sans Pro", sans-serif; color: #31333f; font-size: 14px; }}
.stack {{ position: relative; height: {int(height)}px; }}
.stack img {{ position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; object-position: center top; }}
label {{ display: flex; align-items: center; gap: 8px; margin-top: 6px; }}
input {{ flex: 1; accent-color: #1f5fa6; }}
.cap {{ color: #6b6f7b; font-size: 13px; text-align: center; }}
</style></head><body>
<div class="stack"><img alt="The film as read" src="{png_data_uri(grey)}">
<img id="heat" alt="Grad-CAM heat map" src="{png_data_uri(heat_layer(heat))}" style="opacity:{start / 100:.2f}"></div>
<div class="cap">{html.escape(caption)}</div>
<label for="opacity">Heat-map opacity <input id="opacity" type="range" min="0" max="100" step="5" value="{start}"
 oninput="document.getElementById('heat').style.opacity = this.value / 100;
          document.getElementById('shown').textContent = (this.value / 100).toFixed(2);">
<span id="shown">{start / 100:.2f}</span></label>
</body></html>"""
