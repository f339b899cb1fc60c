"""The bench's `guards` part: the timings the tests used to assert on the wall clock (flaky on a
shared machine), measured here instead, each beside the bound it had. Small: seconds in all.

- auth: a wrong password costs the same for a known and an unknown user (no user-name oracle);
- image refusals: the slowest typed refusal of the decompression/declared-size bombs and of small
  broken files (each was bounded at 2 s);
- image fuzz: the slowest read_image over seeded mutations of small valid films (bounded at 3 s);
- labs fuzz: parse_labs over seeded random lab dicts and texts, in all (bounded at 15 s)."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.data.imaging import read_image
from pneumo.data.labs import default_panel, parse_labs
from pneumo.errors import PneumoError
from pneumo.qa.bench_report import TARGETS
from pneumo.qa.hostile_bytes import bombs, dicom_bytes, encode, png_header_only
from pneumo.service import auth


def _clock(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def auth_timing(tries: int = 5) -> dict:
    """Seconds for `tries` wrong passwords of a known and of an unknown user, and their ratio."""
    with tempfile.TemporaryDirectory(prefix="pneumo-bench-auth-") as tmp:
        path = Path(tmp) / "users"
        auth.add_user(path, "alice", "correct horse battery")
        users = auth.load_users(path)

    def took(name: str) -> float:
        return _clock(lambda: [auth.authenticate(name, "wrong password!", users) for _ in range(tries)])
    known, unknown = took("alice"), took("mallory")
    bound = TARGETS["auth_known_over_unknown"]
    return {"tries": tries, "known_s": round(known, 4), "unknown_s": round(unknown, 4),
            "ratio": round(known / unknown, 3), "bound": [1 / bound, bound]}


def _broken_films() -> dict[str, bytes]:
    """Small refused inputs beside the bombs: empty, truncated, a header that lies about its size."""
    gray = (np.add.outer(np.arange(96), np.arange(128)) % 256).astype(np.uint8)
    png = encode(Image.fromarray(gray), "PNG")
    dcm = dicom_bytes(96, 128)
    return {"empty": b"", "text": b"not an image at all" * 10, "png-truncated": png[: len(png) // 2],
            "png-header-50000": png_header_only(50_000, 50_000), "dicom-truncated": dcm[: len(dcm) // 3]}


def image_refusals() -> dict:
    """Seconds each hostile image takes to be refused (read_image), the slowest first."""
    inputs = {**{name: build() for name, build in bombs().items()}, **_broken_films()}
    seconds, accepted = {}, []
    for name, data in inputs.items():
        t = time.perf_counter()
        try:
            read_image(data)
            accepted.append(name)
        except PneumoError:
            pass
        seconds[name] = round(time.perf_counter() - t, 4)
    worst = max(seconds, key=seconds.get)
    return {"n": len(inputs), "max_s": seconds[worst], "slowest": worst, "accepted": accepted,
            "bound_s": TARGETS["image_refusal_s"], "seconds": dict(sorted(seconds.items(), key=lambda kv: -kv[1]))}


def _seeds() -> list[bytes]:
    gray = (np.add.outer(np.arange(72), np.arange(80)) * 2 % 256).astype(np.uint8)
    img = Image.fromarray(gray)
    return [encode(img, "PNG"), encode(img, "JPEG", quality=80), encode(img, "TIFF"),
            dicom_bytes(72, 80, pixels=gray.astype(np.uint16) * 16)]


def image_fuzz(n: int = 200, seed: int = 0) -> dict:
    """The slowest read_image over n seeded mutations (byte sets, flips, cuts, huge lengths) of small films."""
    rng = np.random.default_rng(seed)
    seeds, worst, refused = _seeds(), 0.0, 0
    for _ in range(n):
        data = bytearray(seeds[rng.integers(len(seeds))])
        for _ in range(rng.integers(1, 7)):
            pos = int(rng.integers(len(data))) if data else 0
            op = rng.integers(4)
            if op == 0 and data:
                data[pos] = int(rng.integers(256))
            elif op == 1 and data:
                data[pos] ^= 1 << int(rng.integers(8))
            elif op == 2:
                del data[pos:pos + int(rng.integers(1, 65))]
            elif data:
                data[pos:pos + 4] = b"\xff\xff\xff\x7f"      # large lengths and sizes are what parsers trust
        t = time.perf_counter()
        try:
            read_image(bytes(data))
        except PneumoError:
            refused += 1
        worst = max(worst, time.perf_counter() - t)
    return {"n": n, "refused": refused, "max_s": round(worst, 4), "bound_s": TARGETS["image_fuzz_input_s"]}


def labs_fuzz(n: int = 300, seed: int = 0) -> dict:
    """Seconds for parse_labs over n seeded random lab dicts, CSV texts and JSON documents, in all."""
    rng = np.random.default_rng(seed)
    panel = default_panel()
    names = list(panel.keys) + ["Glucose [mmol/L]", "WBC (K/uL)", "2951-2", "urea", "hb", "x", ""]
    values = [None, True, 0, -1, 1e309, float("nan"), "5.5 mmol/L", "<0.2", "=1+2", "140 mEq/L", "NaN", "'-3", "abc"]

    def pick(seq):
        return seq[int(rng.integers(len(seq)))]
    sources = []
    for i in range(n):
        d = {pick(names): pick(values) for _ in range(int(rng.integers(0, 9)))}
        if i % 3 == 0:
            sources.append(d)
        elif i % 3 == 1:
            sources.append((",".join(map(str, d)) + "\n" + ",".join(map(str, d.values()))).encode())
        else:
            entries = [{"resource": {"code": {"text": k}, "valueQuantity": {"value": str(v)}}} for k, v in d.items()]
            sources.append(json.dumps({"resourceType": "Bundle", "entry": entries}).encode())
    refused = 0
    t = time.perf_counter()
    for source in sources:
        try:
            parse_labs(source, panel)
        except PneumoError:
            refused += 1
    return {"n": n, "refused": refused, "seconds": round(time.perf_counter() - t, 4), "bound_s": TARGETS["labs_fuzz_s"]}


def part_guards() -> dict:
    return {"auth": auth_timing(), "image_refusal": image_refusals(), "image_fuzz": image_fuzz(),
            "labs_fuzz": labs_fuzz()}
