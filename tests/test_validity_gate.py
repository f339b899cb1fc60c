"""The validity gate, measured (issue: refuse what the model should not read).

Negative set, built here from what packages ship: scikit-image's sample photos (colour and
grayscale), pydicom's CT/MR test files, noise, flat images and rendered text. At least 95% must
be refused or warned; at most 2% of the Kermany official test films may be refused."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pneumo import config
from pneumo.errors import PneumoError, UnsupportedImageError
from pneumo.inference.predictor import Case, Predictor


@pytest.fixture(scope="module")
def predictor(shipped_bundle):
    predictor = Predictor.load()
    assert predictor.runner.gate is not None, "the shipped bundle has no reference set (reference.npz)"
    return predictor


def _png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


SKIMAGE_SAMPLES = ("astronaut", "camera", "coffee", "coins", "moon", "page", "text", "chelsea", "rocket", "horse",
                   "clock", "immunohistochemistry", "retina", "hubble_deep_field", "grass", "gravel", "brick",
                   "cell", "colorwheel")   # the ones scikit-image ships (human_mitosis needs a download: left out)
PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm")   # in pydicom's own test_files
NEGATIVES = len(SKIMAGE_SAMPLES) + len(PYDICOM_FILES) + 6 + 3 + 2   # + noise, flat, text


def negative_set() -> dict[str, bytes]:
    import skimage.data as sk
    from pydicom.data import get_testdata_file

    out = {}
    for name in SKIMAGE_SAMPLES:
        img = getattr(sk, name)()
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.dtype != np.uint8:
            img = (255 * (img - img.min()) / max(np.ptp(img), 1)).astype(np.uint8)
        out[f"skimage:{name}"] = _png(img)
    for name in PYDICOM_FILES:
        path = get_testdata_file(name)
        assert path, f"pydicom no longer ships {name}"
        out[f"pydicom:{name}"] = open(path, "rb").read()
    rng = np.random.default_rng(0)
    for i, size in enumerate((128, 512, 1024)):
        out[f"noise:uniform{size}"] = _png((rng.random((size, size)) * 255).astype(np.uint8))
        out[f"noise:gauss{size}"] = _png(np.clip(128 + 40 * rng.normal(size=(size, size)), 0, 255)
                                         .astype(np.uint8))
    for value in (0, 128, 255):
        out[f"flat:{value}"] = _png(np.full((400, 500), value, np.uint8))
    for i, text in enumerate(("PATIENT REPORT: chest radiograph normal", "Lorem ipsum dolor sit amet " * 4)):
        canvas = Image.new("L", (800, 600), 255)
        draw = ImageDraw.Draw(canvas)
        for line in range(20):
            draw.text((10, 10 + 28 * line), text, fill=0)
        out[f"text:{i}"] = _png(np.asarray(canvas))
    return out


def outcome(predictor, data: bytes) -> str:
    try:
        result = predictor.predict(Case.from_sources(data, None, panel=predictor.panel))
    except UnsupportedImageError:
        return "refuse"
    except PneumoError:
        return "refuse"
    return result.validity


def test_negative_set_is_refused_or_warned(predictor):
    outcomes = {name: outcome(predictor, data) for name, data in negative_set().items()}
    caught = [n for n, o in outcomes.items() if o in ("refuse", "warn")]
    missed = sorted(n for n, o in outcomes.items() if o == "accept")
    rate = len(caught) / len(outcomes)
    print(f"\nvalidity gate: {len(caught)}/{len(outcomes)} negatives refused or warned "
          f"({rate:.1%}); accepted: {missed}")
    assert len(outcomes) == NEGATIVES, sorted(outcomes)
    assert rate >= 0.95, missed


@pytest.mark.data
def test_kermany_test_films_are_rarely_refused(predictor):
    paths = sorted((config.kermany_dir() / "test").glob("*/*.jpeg"))
    assert len(paths) == 624
    cases = [Case.from_sources(p, None, panel=predictor.panel) for p in paths]
    results = []
    for i in range(0, len(cases), 64):
        results += predictor.predict_many(cases[i:i + 64])
    refused = sum(isinstance(r, PneumoError) for r in results)
    warned = sum(not isinstance(r, PneumoError) and r.validity == "warn" for r in results)
    print(f"\nKermany test: {refused}/624 refused ({refused / 624:.1%}), {warned} warned")
    assert refused / len(paths) <= 0.02
