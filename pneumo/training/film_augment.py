"""What makes one source's films differ from another's, applied at random to a film before the
one preprocessing function, so a film check fitted on a few sources cannot use them as its cue.

Every film (adult or child) is first put on a canvas of its own aspect (a Kermany copy, squashed to
224x224, gets back an aspect drawn from its originals' 1.2-1.7), then: a random crop or a black or
white border, a resolution drop, a contrast window and gamma curve, burned-in text and markers, blur
or noise, and a JPEG round trip. `full_size_like` is the other direction: a squashed Kermany copy
made into the kind of file a user uploads (1500x1100, aspect restored, JPEG), read back through
the real loader."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pneumo.data.imaging import load_for_model, preprocess

CANVAS_HEIGHT = 448
CHILD_ASPECT = (1.2, 1.7)              # width / height of Kermany's originals
WORDS = ("R", "L", "AP", "PA", "PORTABLE", "SUPINE", "ERECT", "SITTING", "1", "2", "AM", "PM", "CXR")


def canvas(film: np.ndarray, aspect: float | None = None, height: int = CANVAS_HEIGHT) -> np.ndarray:
    """(H, W) float [0, 1] film resized to `height` rows, at `aspect` (width / height) when given
    (a squashed copy's lost aspect), else its own."""
    h, w = film.shape
    width = int(round(height * (aspect if aspect is not None else w / h)))
    img = Image.fromarray(np.asarray(film, np.float32), mode="F")
    return np.clip(np.asarray(img.resize((width, height), Image.BILINEAR)), 0, 1)


def _text(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3 burned-in words or marker blocks, white or black, at the film's edges mostly."""
    img = Image.fromarray(np.round(arr * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    h, w = arr.shape
    for _ in range(int(rng.integers(1, 4))):
        fill = 255 if rng.random() < 0.8 else 0
        size = int(h * rng.uniform(0.03, 0.09))
        x, y = int(rng.uniform(0, 0.85) * w), int(rng.choice([rng.uniform(0, 0.15), rng.uniform(0.8, 0.92),
                                                               rng.uniform(0, 0.9)]) * h)
        if rng.random() < 0.25:     # a lead marker or a label block
            draw.rectangle([x, y, x + size, y + int(size * rng.uniform(0.6, 1.6))], fill=fill)
        else:
            word = str(rng.choice(WORDS)) if rng.random() < 0.7 else \
                "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 9))))
            draw.text((x, y), word, fill=fill, font=ImageFont.load_default(size=max(size, 6)))
    return np.asarray(img, np.float32) / 255.0


def source_shift(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random source's look for a (H, W) float [0, 1] canvas; returns a (H', W') float [0, 1]."""
    x = np.asarray(film, np.float32)
    h, w = x.shape
    if rng.random() < 0.5:                                   # a tighter or shifted field of view
        ch, cw = int(h * rng.uniform(0.72, 1.0)), int(w * rng.uniform(0.72, 1.0))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        x = x[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.35:                                  # a border, black or white, uneven
        value = float(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
        t, b, le, ri = (int(s * rng.uniform(0, 0.12)) for s in (x.shape[0], x.shape[0], x.shape[1], x.shape[1]))
        x = np.pad(x, ((t, b), (le, ri)), constant_values=value)
    if rng.random() < 0.5:                                   # contrast window and gamma curve
        lo, hi = rng.uniform(0, 0.15), rng.uniform(0.85, 1.0)
        x = np.clip((x - lo) / (hi - lo), 0, 1) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.5:
        x = _text(x, rng)
    if rng.random() < 0.4:                                   # a low-resolution source
        side = int(rng.integers(96, 224))
        scale = side / min(x.shape)
        small = Image.fromarray(x, mode="F").resize((max(8, int(x.shape[1] * scale)), max(8, int(x.shape[0] * scale))),
                                                    Image.BILINEAR)
        x = np.asarray(small.resize((x.shape[1], x.shape[0]), Image.BILINEAR))
    if rng.random() < 0.25:
        x = np.asarray(Image.fromarray(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8))
                       .filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))), np.float32) / 255.0
    if rng.random() < 0.25:
        x = x + rng.normal(0, rng.uniform(0.01, 0.04), x.shape).astype(np.float32)
    x = np.clip(x, 0, 1)
    if rng.random() < 0.5:                                   # a JPEG round trip
        buf = io.BytesIO()
        Image.fromarray(np.round(x * 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(30, 96)))
        x = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"), np.float32) / 255.0
    return np.clip(x, 0, 1).astype(np.float32)


def shifted_inputs(films, rng: np.random.Generator, size: int, aspects=None) -> np.ndarray:
    """uint8 (n, size, size) model inputs of `films` (each (H, W) float [0, 1] or uint8), each
    given one random source's look; aspects: per film, the aspect to restore (None: its own)."""
    out = np.empty((len(films), size, size), np.uint8)
    for i, f in enumerate(films):
        f = np.asarray(f, np.float32) / (255.0 if np.asarray(f).dtype == np.uint8 else 1.0)
        c = canvas(f, None if aspects is None else aspects[i])
        out[i] = np.round(preprocess(source_shift(c, rng), size)[..., 0] * 255)
    return out


def child_aspects(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(*CHILD_ASPECT, n)


def full_size_like(film: np.ndarray, size: int, shape=(1100, 1500), quality: int = 90) -> np.ndarray:
    """A squashed (S, S) uint8 Kermany copy as a full-size upload: upscaled to `shape` (rows,
    columns; the aspect restored), saved as JPEG, read back through load_for_model; uint8 (S, S)."""
    img = Image.fromarray(np.asarray(film, np.uint8)).resize((shape[1], shape[0]), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    arr, _ = load_for_model(buf.getvalue(), size)
    return np.round(arr[..., 0] * 255).astype(np.uint8)
