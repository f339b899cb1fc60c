"""The `runtime` part of `python -m pneumo bench`: whole processes side by side in one run, for
  litert  ours on the exported LiteRT graph (the default runtime: after),
  keras   ours on the Keras path (PNEUMO_RUNTIME=keras: before),
  peer    the PyPI Keras classifier (pneumo.qa.bench_peer), where its wheel is in .cache/peer.
Figures: one film through `predict`, cold (wall and peak RSS of the process, median of
`repeats` runs taken in turn so load spikes spread over all sides), a batch of the Kermany test
films through `batch` (the peer: its predict path over the same films), and warm predict p50
in a long-lived process; with the ratios of each side to litert.

    python -m pneumo.qa.bench_runtime --warm MODEL N FILM [FILM ...]   (a warm child: JSON on stdout)
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pneumo import config
from pneumo.inference.predictor import Case, Predictor
from pneumo.models.bundle import read_meta
from pneumo.qa.bench_peer import PEER, PEER_DIR, peer_model
from pneumo.qa.bench_report import dig

SIDES = ("litert", "keras", "peer")
WARM_TAG = "WARM_JSON "


LAUNCHER = ("import json, os, resource, subprocess, sys, time; t = time.perf_counter(); "
            "rc = subprocess.call(sys.argv[2:]); wall = time.perf_counter() - t; "
            "open(sys.argv[1], 'w').write(json.dumps([rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
"""Starts the measured process from a small interpreter: a child forked from this (large) process
would count this one's pages in its own peak RSS."""


def measure(cmd: list[str], env: dict, timeout: float = 900) -> dict:
    """Wall seconds and peak RSS (MiB) of one whole process (its rusage, read by LAUNCHER)."""
    with tempfile.TemporaryDirectory() as tmp:
        stats, out, err = Path(tmp) / "stats.json", Path(tmp) / "out", Path(tmp) / "err"
        try:
            with open(out, "wb") as o, open(err, "wb") as e:
                subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(stats), *cmd], cwd=config.REPO_ROOT,
                               env=env, stdout=o, stderr=e, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        if not stats.is_file():
            return {"error": "the launcher failed: " + (stderr.strip().splitlines() or ["-"])[-1][:300]}
        rc, wall, maxrss_kb = json.loads(stats.read_text())
    res = {"wall_s": round(wall, 3), "peak_rss_mb": round(maxrss_kb / 1024, 1), "rc": rc, "stdout": stdout[-4000:]}
    if rc != 0:
        res["error"] = f"exit {rc}: " + (stderr.strip().splitlines() or ["-"])[-1][:300]
    return res


def _env(side: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["PNEUMO_RUNTIME"] = "keras" if side == "keras" else "litert"
    return env


def _commands(side: str, model: Path, peer: Path | None, film: Path, manifest: Path, films_list: Path,
              out_csv: Path, root: Path) -> tuple[list[str], list[str]] | None:
    """(cold predict, batch) commands for one side; None for an absent peer."""
    py = sys.executable
    if side == "peer":
        if peer is None:
            return None
        return ([py, "-m", "pneumo.qa.bench_peer", str(peer), str(film)],
                [py, "-m", "pneumo.qa.bench_peer", str(peer), "@" + str(films_list)])
    return ([py, "-m", "pneumo", "predict", "--image", str(film), "--model", str(model), "--json", "--no-log"],
            [py, "-m", "pneumo", "batch", str(manifest), "--out", str(out_csv), "--root", str(root),
             "--model", str(model), "--no-log", "--quiet"])


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1].get("error", "no run") if runs else "no run"}
    return {"wall_s": round(statistics.median(r["wall_s"] for r in ok), 3),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in ok), 1),
            "runs_s": [r["wall_s"] for r in ok]}


def part_runtime(model: Path, work: Path, images: list[tuple[Path, int]], lab_file, repeats: int = 3,
                 warm_n: int = 20, log=print) -> dict:
    """See the module docstring; `images`: [(path, label)], the batch's films (the first is the cold one)."""
    root = Path(os.path.commonpath([str(p.parent) for p, _ in images]))
    rows = {}
    for label in (0, 1):
        with open(lab_file(label), newline="") as fh:
            rows[label] = next(csv.DictReader(fh))
    manifest, films_list = work / "runtime-manifest.csv", work / "runtime-films.txt"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image_path", *rows[0]])
        w.writeheader()
        for i, (path, _) in enumerate(images):
            w.writerow({"image_path": str(path.relative_to(root)), **rows[i % 2]})
    films_list.write_text("\n".join(str(p) for p, _ in images) + "\n")
    peer = peer_model()
    out: dict = {"films": len(images), "repeats": repeats, "peer": PEER if peer else None}
    if peer is None:
        out["peer_status"] = (f"not measured: the peer is not in {PEER_DIR} "
                              f"(pip download --no-deps {PEER} -d .cache/peer)")
        log(f"bench: runtime: {out['peer_status']}")
    cmds = {s: _commands(s, model, peer, images[0][0], manifest, films_list, work / f"out-{s}.csv", root)
            for s in SIDES}
    cmds = {s: c for s, c in cmds.items() if c is not None}
    cold: dict[str, list] = {s: [] for s in cmds}
    for _ in range(repeats):                      # in turn: a load spike falls on every side alike
        for side, (predict_cmd, _) in cmds.items():
            cold[side].append(measure(predict_cmd, _env(side), 300))
    batch = {}
    for side, (_, batch_cmd) in cmds.items():
        log(f"bench: runtime: batch of {len(images)} on {side} ...")
        batch[side] = _summary([measure(batch_cmd, _env(side), 1800)])
        if "wall_s" in batch[side]:
            batch[side]["films_per_s"] = round(len(images) / batch[side]["wall_s"], 2)
    warm = {s: _warm(s, model, [p for p, _ in images[:warm_n]]) for s in ("litert", "keras")}
    out.update(cold_predict={s: _summary(v) for s, v in cold.items()}, batch=batch, warm=warm)
    out["ratios"] = _ratios(out)
    out["limit"] = physical_limit(model, out)
    return out


def gemm_gmacs_per_s(n: int = 1024, repeats: int = 5) -> float:
    """The machine's float32 multiply-accumulate rate on a large matrix product (all cores): what
    dense kernels can reach here; depthwise convolutions reach less (they are memory-bound)."""
    import numpy as np

    a = np.random.default_rng(0).random((n, n), np.float32)
    a @ a
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return n ** 3 / min(times) / 1e9


def physical_limit(model: Path, out: dict) -> dict:
    """What a film costs (MACs, from the export) against the machine's GEMM rate, and how close
    the batch (whole process, per film) and the warm predict come to that floor."""
    macs = (read_meta(model).get("runtime") or {}).get("encoder_macs_per_film")
    rate = gemm_gmacs_per_s()
    res = {"gemm_gmacs_per_s": round(rate, 1), "encoder_macs_per_film": macs}
    if macs:
        floor_ms = macs / (rate * 1e9) * 1000
        res["floor_ms_per_film"] = round(floor_ms, 3)
        per_film = dig(out, ("batch", "litert", "wall_s"))
        if per_film:
            res["batch_ms_per_film"] = round(per_film / out["films"] * 1000, 3)
            res["batch_over_floor"] = round(res["batch_ms_per_film"] / floor_ms, 1)
        warm = dig(out, ("warm", "litert", "predict_ms", "p50"))
        if warm:
            res["warm_predict_over_floor"] = round(warm / floor_ms, 1)
    return res


def _warm(side: str, model: Path, films: list[Path]) -> dict:
    cmd = [sys.executable, "-m", "pneumo.qa.bench_runtime", "--warm", str(model), str(len(films)), *map(str, films)]
    res = measure(cmd, _env(side), 900)
    lines = [ln for ln in res.get("stdout", "").splitlines() if ln.startswith(WARM_TAG)]
    if "error" in res or not lines:
        return {"error": res.get("error", "no result")}
    return json.loads(lines[-1][len(WARM_TAG):])


def _ratios(out: dict) -> dict:
    """Each side's figure over litert's: how many times faster (or leaner) litert is."""
    ratios = {}
    for figure, key in (("cold_predict", "wall_s"), ("cold_predict", "peak_rss_mb"), ("batch", "wall_s")):
        mine = (out[figure].get("litert") or {}).get(key)
        for side in ("keras", "peer"):
            theirs = (out[figure].get(side) or {}).get(key)
            if mine and theirs:
                ratios[f"{figure}_{key}_{side}_over_litert"] = round(theirs / mine, 2)
    a, b = (out["warm"].get(s, {}).get("predict_ms", {}).get("p50") for s in ("litert", "keras"))
    if a and b:
        ratios["warm_predict_p50_keras_over_litert"] = round(b / a, 2)
    return ratios


def _warm_child(model: str, films: list[str]) -> None:
    """A long-lived process: load, warm up on the first film, then time predict with no cached embedding."""
    import numpy as np

    t = time.perf_counter()
    pred = Predictor.load(model)
    load_s = time.perf_counter() - t
    cases = [Case.from_sources(image=f, panel=pred.panel) for f in films]
    for _ in range(2):
        pred.predict(cases[0])
        pred._embeddings.clear()
    times = []
    for case in cases:
        pred._embeddings.clear()
        t = time.perf_counter()
        pred.predict(case)
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    print(WARM_TAG + json.dumps({"runtime": pred.runner.runtime, "load_s": round(load_s, 3), "predict_ms": {
        "p50": round(float(np.median(ms)), 3), "p95": round(float(np.percentile(ms, 95)), 3), "n": len(ms)}}),
        flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--warm"]:
    _warm_child(sys.argv[2], sys.argv[4:4 + int(sys.argv[3])])
