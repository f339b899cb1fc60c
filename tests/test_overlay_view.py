"""The client-side overlay: the browser's blend equals the report's PIL composite."""
import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from pneumo.explain.attribution import heat_layer, overlay
from pneumo.present.overlay_view import blend_widget


def _film_and_heat(h=40, w=30):
    yy, xx = np.mgrid[0:h, 0:w]
    film = (0.2 + 0.6 * xx / w).astype(np.float32)
    heat = np.exp(-((yy - h / 2) ** 2 + (xx - w / 3) ** 2) / 60.0)
    return film, heat


def _images(page: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))))
            for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


@pytest.mark.parametrize("alpha", [0.0, 0.45, 1.0])
def test_the_browser_blend_is_the_report_overlay(alpha):
    film, heat = _film_and_heat()
    grey, layer = _images(blend_widget(film, heat, alpha))
    assert grey.shape == film.shape and layer.shape == film.shape + (4,)
    assert np.array_equal(layer, heat_layer(heat))
    # what a browser draws: the layer's colour at (its alpha x the element's opacity) over the film
    a = layer[..., 3:4].astype(np.float64) / 255 * alpha
    drawn = layer[..., :3] * a + np.repeat(grey[..., None], 3, axis=2) * (1 - a)
    assert np.abs(drawn - overlay(film, heat, alpha).astype(np.float64)).max() <= 1.5


def test_the_widget_starts_at_its_opacity_and_escapes_its_caption():
    film, heat = _film_and_heat()
    page = blend_widget(film, heat, 0.45, caption="<b>x</b>")
    assert 'value="45"' in page and "opacity:0.45" in page and 'type="range"' in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    with pytest.raises(ValueError, match="shape"):
        blend_widget(film, heat[:10])


def test_a_map_with_no_heat_says_no_region_raised_the_score():
    from pneumo.present.overlay_view import NO_REGION, no_region

    film, heat = _film_and_heat()
    assert not no_region(heat) and NO_REGION not in blend_widget(film, heat)
    blank = np.zeros_like(heat)
    assert no_region(blank) and NO_REGION in blend_widget(film, blank)


def test_a_numbered_colour_bar_and_the_caption_under_a_landscape_image():
    from pneumo.present.overlay_view import widget_height

    film, heat = _film_and_heat(h=30, w=60)                      # landscape
    page = blend_widget(film, heat)
    assert "1 (max)" in page and ">0<" in page and "linear-gradient" in page
    assert "aspect-ratio: 60 / 30" in page                      # the image box is the film's shape
    assert widget_height((30, 60)) < widget_height((60, 30)) <= 380 + 86
