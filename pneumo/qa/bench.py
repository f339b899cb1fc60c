"""`python -m pneumo bench` / `python -m pneumo bench`: speed and memory of the shipped model.

Parts (--parts, comma-separated; `all` adds the slow grid): cold (a fresh process from import
to the first prediction), case (one warm case, step by step, median/p95 over --n Kermany test
images), batch (the CLI batch path over the Kermany test split, cases/s and peak RSS), memory
(peak RSS of a process doing what the app does with a 3000x3000 DICOM), hostile (the hostile
input corpus, pneumo.qa.hostile), runtime (LiteRT vs the Keras path vs the PyPI peer, whole processes
side by side, pneumo.qa.bench_runtime), guards (the timings tests no longer assert on the wall clock:
auth's equal work, hostile image refusals, image and labs fuzz; pneumo.qa.bench_guards), grid (wall
time of `python -m pneumo experiment configs/paper.toml`).
Writes JSON (--out) and prints a Markdown table with the targets beside the figures.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pneumo import config
from pneumo.data.imaging import preprocess, read_image
from pneumo.data.labs import parse_labs
from pneumo.data.labs.healthy import healthy_row
from pneumo.explain import attribution as explain
from pneumo.explain.shapley import shapley_vs_reference
from pneumo.inference.predictor import Case, Predictor
from pneumo.models.bundle import read_meta
from pneumo.qa.bench_guards import part_guards
from pneumo.qa.bench_report import REFERENCE, TARGETS
from pneumo.qa.bench_runtime import part_runtime
from pneumo.qa.hostile import run_corpus, summarise
from pneumo.qa.hostile_bytes import chest_like, dicom_bytes
from pneumo.service.batch import run_batch

PARTS = ("cold", "case", "batch", "memory", "hostile", "runtime", "guards", "grid")
DEFAULT_PARTS = "cold,case,batch,memory,hostile,runtime,guards"    # the grid takes minutes: ask for it
CHILD_TAG = "BENCH_JSON "
EXPLAIN_N = 10       # the whole explain repeats SHAP: time it on the first 10 cases only, to keep the run short
LABS = {1: "example_labs_pneumonia.csv", 0: "example_labs_normal.csv"}


def _proc_status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; getrusage where /proc is absent), in MiB."""
    import resource
    return _proc_status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident set now (VmRSS), in MiB; 0 where /proc is absent."""
    return _proc_status_mb("VmRSS") or 0.0


def _stats(values: list[float], scale: float = 1000.0) -> dict:
    import numpy as np
    v = np.asarray(values, dtype=float) * scale
    return {"p50": round(float(np.median(v)), 3), "p95": round(float(np.percentile(v, 95)), 3),
            "mean": round(float(v.mean()), 3), "n": int(len(v))}


def _lab_file(label: int) -> str:
    return str(config.REPO_ROOT / "assets" / LABS[label])


def sample_images(n: int | None, workdir: Path) -> tuple[list[tuple[Path, int]], str]:
    """n Kermany test images (both classes, evenly spread, interleaved), or all when n is None;
    synthetic chest-like PNGs where the data is absent. Returns ([(path, label)], source)."""
    test = config.kermany_dir() / "test"
    groups = [sorted((test / cls).glob("*.jp*g")) for cls in ("NORMAL", "PNEUMONIA")]
    if all(groups):
        if n is None:
            return [(p, lab) for lab, g in enumerate(groups) for p in g], "kermany test split"
        counts = (n - n // 2, n // 2)                  # NORMAL, PNEUMONIA
        picked = [[g[int(i * len(g) / k)] for i in range(k)] for g, k in zip(groups, counts)]
        mixed = [x for pair in zip(*picked) for x in pair] + picked[0][len(picked[1]):]
        return [(p, int(p.parent.name == "PNEUMONIA")) for p in mixed[:n]], "kermany test split"
    from PIL import Image
    workdir.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n or 64):
        path = workdir / f"synthetic-{i}.png"
        Image.fromarray((chest_like(256 + i, 300) >> 4).astype("uint8")).save(path)
        out.append((path, i % 2))
    return out, "synthetic (Kermany data not found)"


# ---- subprocess parts ----------------------------------------------------------------------

def _spawn(name: str, args: dict, timeout: float) -> dict:
    """Run a child part in a fresh interpreter; its result is the JSON line it prints last."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "pneumo.qa.bench", "--child", name, json.dumps(args)],
                              cwd=config.REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    out = json.loads(lines[-1][len(CHILD_TAG):])
    out["process_wall_s"] = round(time.time() - t0, 3)
    if "first_prediction_at" in out:
        out["to_first_prediction_s"] = round(out.pop("first_prediction_at") - t0, 3)
    return out


def _child(name: str, args: dict) -> None:
    t0 = time.perf_counter()
    res = {"import_s": time.perf_counter() - t0}
    t = time.perf_counter()
    pred = Predictor.load(args["model"])
    res["load_s"] = time.perf_counter() - t
    res["rss_after_load_mb"] = rss_mb()
    if name == "cold":
        t = time.perf_counter()
        case = Case.from_sources(image=args["image"], labs=args["labs"], panel=pred.panel)
        pred.predict(case)
        res["first_predict_s"] = time.perf_counter() - t
        res["first_prediction_at"] = time.time()
        t = time.perf_counter()
        pred.explain(case)
        res["first_explain_s"] = time.perf_counter() - t
    elif name == "batch":
        s = run_batch(args["manifest"], args["out"], root=args["root"], predictor=pred, progress=False)
        res.update(cases_per_s=s.cases_per_second, seconds=s.seconds, scored=s.scored, errors=s.errors)
    elif name == "memory":                                  # what pages/second_opinion.py does
        t = time.perf_counter()
        # a made-up film, which the film check rightly finds unlike any child: a child's age makes it a case within use
        case = Case.from_sources(image=Path(args["image"]).read_bytes(), labs=args["labs"], panel=pred.panel, age=3)
        res["read_s"] = time.perf_counter() - t
        res["rss_after_read_mb"] = rss_mb()
        t = time.perf_counter()
        expl = pred.explain(case)
        res["explain_s"] = time.perf_counter() - t
        res["rss_after_explain_mb"] = rss_mb()   # the Explanation (heat + overlay) still held, as the app holds it
        t = time.perf_counter()
        pred.explain(case)                       # again, warm: the large image's own cost without first-call JIT
        res["explain_warm_s"] = time.perf_counter() - t
        res["overlay_shape"] = list(expl.overlay.shape)
    res["peak_rss_mb"] = peak_rss_mb()
    print(CHILD_TAG + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}),
          flush=True)


def part_cold(model: Path, work: Path, images) -> dict:
    path, label = images[0]
    return _spawn("cold", {"model": str(model), "image": str(path), "labs": _lab_file(label)}, 300)


def part_batch(model: Path, work: Path, limit: int | None) -> dict:
    images, source = sample_images(limit, work / "batch-images")
    root = config.kermany_dir() / "test" if source.startswith("kermany") else work / "batch-images"
    lab_rows = {}
    for label in (0, 1):
        with open(_lab_file(label), newline="") as fh:
            lab_rows[label] = next(csv.DictReader(fh))
    manifest = work / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image_path", "truth", *lab_rows[0]])
        w.writeheader()
        for i, (path, label) in enumerate(images):   # labs alternate by row, not by class: no label leak
            w.writerow({"image_path": str(path.relative_to(root)), "truth": label, **lab_rows[i % 2]})
    out_csv = work / "batch-out.csv"
    res = _spawn("batch", {"model": str(model), "manifest": str(manifest), "root": str(root.resolve()),
                           "out": str(out_csv)}, 900)
    res["images"], res["source"] = len(images), source
    if out_csv.is_file() and "error" not in res:      # a sanity check that the model scored sensibly
        with open(out_csv, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["label"]]
        hits = sum((r["label"] == "PNEUMONIA") == (r["truth"] == "1") for r in rows)
        res["accuracy_at_threshold"] = round(hits / len(rows), 4) if rows else None
    return res


def part_memory(model: Path, work: Path) -> dict:
    path = work / "large-3000x3000.dcm"
    pixels, source = large_film(3000, work)
    path.write_bytes(dicom_bytes(3000, 3000, pixels=pixels))
    res = _spawn("memory", {"model": str(model), "image": str(path), "labs": _lab_file(1)}, 300)
    res["dicom_mb"], res["film"] = round(path.stat().st_size / 2 ** 20, 1), source
    return res


def large_film(side: int, work: Path):
    """(side, side) 12-bit pixels of a real Kermany test film upscaled where the data is there (a made-up
    film is refused by the gate before the explanation whose memory is measured), else chest-like ones."""
    import numpy as np
    from PIL import Image
    picked, source = sample_images(1, work / "images")
    if not source.startswith("kermany"):
        return chest_like(side, side), "made up (Kermany data not found)"
    film = Image.open(picked[0][0]).convert("L").resize((side, side), Image.BICUBIC)
    return np.asarray(film, np.uint16) * 16, f"a Kermany test film upscaled to {side}x{side}"


def part_grid(model: Path, work: Path, timeout: float, cfg: Path) -> dict:
    if not cfg.is_file():
        return {"status": "not available", "why": f"{cfg.name} not found"}
    env = dict(os.environ, PNEUMO_MODEL_DIR=str(model), TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "pneumo", "experiment", str(cfg), "--out", str(work / "grid")],
                              cwd=config.REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timed out", "wall_s": round(time.time() - t0, 1)}
    tail = (proc.stderr.strip() or proc.stdout.strip() or "-").splitlines()[-1]
    return {"status": "ok" if proc.returncode == 0 else "failed", "rc": proc.returncode, "config": cfg.name,
            "wall_s": round(time.time() - t0, 1), "last_line": tail[:300]}


# ---- in-process parts ----------------------------------------------------------------------

def part_case(pred, images) -> dict:
    """Each step of one warm case, timed around the library calls; plus before/after ratios."""
    import numpy as np

    runner, clock = pred.runner, time.perf_counter
    steps: dict[str, list[float]] = {}

    def timed(key, fn, *a, **kw):
        t = clock()
        out = fn(*a, **kw)
        steps.setdefault(key, []).append(clock() - t)
        return out

    warm = Case.from_sources(image=images[0][0], labs=_lab_file(images[0][1]), panel=pred.panel)
    pred.explain(warm)                               # traces the tf.functions, imports shap
    cases = []
    for path, label in images:
        xray = timed("decode", read_image, path)
        x = timed("preprocess", preprocess, xray.pixels, runner.image_size)
        steps.setdefault("decode_preprocess", []).append(steps["decode"][-1] + steps["preprocess"][-1])
        reading = timed("labs_parse", parse_labs, Path(_lab_file(label)), pred.panel)
        case = Case(xray, reading, path.name)
        cases.append(case)
        pred._embeddings.clear()                     # no cached embedding: the model runs
        timed("predict", pred.predict, case)
        early, late = timed("embed", runner.embed, x[None])
        row = pred._lab_row(case)
        # the four modality corners {neither, image, labs, both} in one head call
        timed("contribution", runner.head, np.repeat(early, 4, 0), np.repeat(late, 4, 0),
                        np.array([0, 1, 0, 1], np.float32),
                        np.concatenate([np.full_like(row, np.nan)] * 2 + [row] * 2))
        coarse = timed("gradcam_model", runner.grad_cam, x, row)
        t = clock()
        heat = explain.upsample_heat(coarse, *xray.pixels.shape)
        explain.overlay(xray.pixels, heat)
        steps.setdefault("gradcam", []).append(steps["gradcam_model"][-1] + clock() - t)
        steps.setdefault("predict_gradcam_contribution", []).append(steps["predict"][-1] + steps["gradcam"][-1])

        def f(matrix, e=early, l=late):
            return runner.head_for_one_image(e, l, 1.0, matrix)
        timed("shap", shapley_vs_reference, f, row[0], healthy_row(pred.panel, row[0]))   # the page's: vs normal values
        if len(steps.get("explain", ())) < EXPLAIN_N:
            pred._embeddings.clear()
            timed("explain", pred.explain, case)
    out = {k: _stats(v) for k, v in steps.items()}
    out["shap_background_rows"] = 1                  # one "not measured" reference row
    out["gradcam_runtime"] = runner.grad_cam_runtime
    out["ratios"] = _ratios(pred, cases)
    return out


def _ratios(pred, cases) -> dict:
    """Before/after, same inputs, same run: batched vs per-case predict; compiled vs Keras predict."""
    import numpy as np
    runner, clock = pred.runner, time.perf_counter
    pred._embeddings.clear()
    t = clock()
    for c in cases:
        pred.predict(c)
    per_case = len(cases) / (clock() - t)
    pred._embeddings.clear()
    t = clock()
    pred.predict_many(cases)
    batched = len(cases) / (clock() - t)
    out = {"predict_many_vs_predict": {"before_cases_per_s": round(per_case, 2),
                                       "after_cases_per_s": round(batched, 2),
                                       "speedup": round(batched / per_case, 2)}}
    early, late = runner.embed(np.zeros((4, runner.image_size, runner.image_size, 1), np.float32))
    present = np.array([[0], [1], [0], [1]], np.float32)
    z, missing = runner.lab_inputs(np.repeat(pred._lab_row(cases[0]), 4, 0))
    args = [early * present, late * present, present, z, missing]
    x1 = np.zeros((1, runner.image_size, runner.image_size, 1), np.float32)

    def best(fn, k=5):
        fn()                                         # Keras builds its predict function on the first call
        times = []
        for _ in range(k):
            t = clock()
            fn()
            times.append(clock() - t)
        return float(np.median(times)) * 1000
    if runner.runtime == "litert":                   # the exported graph vs the same bundle's Keras path
        keras_runner = runner.keras_runner()
        for key, rows, fast, slow in (
                ("head_litert_vs_keras_tf_function", 4, lambda: runner._probs(*args),
                 lambda: keras_runner._probs(*args)),
                ("embed_litert_vs_keras_tf_function", 1, lambda: runner.embed(x1), lambda: keras_runner.embed(x1))):
            before, after = best(slow), best(fast)
            out[key] = {"rows": rows, "before_keras_ms": round(before, 3), "after_litert_ms": round(after, 3),
                        "speedup": round(before / after, 1)}
        return out
    head = runner.bundle.fusion_head
    compiled = best(lambda: runner._head(*args).numpy())
    keras_predict = best(lambda: head.predict(args, verbose=0))
    eager = best(lambda: head(args, training=False).numpy())
    embed_compiled = best(lambda: runner.embed(x1))
    embed_keras = best(lambda: runner.bundle.image_encoder.predict(x1, verbose=0))
    out["head_tf_function_vs_keras_predict"] = {
        "rows": 4, "before_keras_predict_ms": round(keras_predict, 3), "eager_call_ms": round(eager, 3),
        "after_tf_function_ms": round(compiled, 3), "speedup": round(keras_predict / compiled, 1)}
    out["embed_tf_function_vs_keras_predict"] = {
        "rows": 1, "before_keras_predict_ms": round(embed_keras, 3), "after_tf_function_ms": round(embed_compiled, 3),
        "speedup": round(embed_keras / embed_compiled, 1)}
    return out


def part_hostile(pred, model: Path, work: Path) -> dict:
    t = time.perf_counter()
    outcomes = run_corpus(work / "hostile", predictor=pred, bundle_dir=model)
    return {"seconds": round(time.perf_counter() - t, 2), "summary": summarise(outcomes),
            "outcomes": [o.to_dict() for o in outcomes]}


def run(model: Path, parts: list[str], n: int, batch_limit: int | None, grid_timeout: float,
        grid_config: Path = config.REPO_ROOT / "configs" / "paper.toml", log=print, repeats: int = 3) -> dict:
    meta = read_meta(model)
    shipped = model.resolve() == config.default_model_dir().resolve()
    report = {"schema": "pneumo.bench/1", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "model": {"dir": str(model), "name": meta["name"], "version": meta["version"],
                        "image_size": int(meta["image_size"]), "shipped": shipped},
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "load_start": [round(x, 2) for x in os.getloadavg()]},
              "targets": TARGETS, "reference": REFERENCE, "parts": {}}
    with tempfile.TemporaryDirectory(prefix="pneumo-bench-") as tmp:
        work = Path(tmp)
        images, source = sample_images(n, work / "images")
        report["data"] = {"source": source, "n": len(images)}
        pred = None
        for part in parts:
            log(f"bench: {part} ...")
            t = time.perf_counter()
            if part in ("case", "hostile") and pred is None:
                pred = Predictor.load(model)
            result = {"cold": lambda: part_cold(model, work, images),
                      "case": lambda: part_case(pred, images),
                      "batch": lambda: part_batch(model, work, batch_limit),
                      "memory": lambda: part_memory(model, work),
                      "hostile": lambda: part_hostile(pred, model, work),
                      "runtime": lambda: part_runtime(model, work, sample_images(batch_limit, work / "rt-images")[0],
                                                      _lab_file, repeats, log=log),
                      "guards": part_guards,
                      "grid": lambda: part_grid(model, work, grid_timeout, grid_config)}[part]()
            report["parts"][part] = result
            log(f"bench: {part} done in {time.perf_counter() - t:.1f} s")
    report["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:   # a part run in its own process (_spawn)
    _child(sys.argv[2], json.loads(sys.argv[3]))
