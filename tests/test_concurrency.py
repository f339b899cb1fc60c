"""One shipped Predictor shared by many threads (as by every app session): no errors, and every
case gets exactly the probability it gets alone, while the embedding cache evicts and refills.

Needs the shipped model and the Kermany test films (PNEUMO_DATA_DIR). Prints the throughput."""
from __future__ import annotations

import os
import random
import threading
import time

import pytest

from pneumo import config

THREADS, ROUNDS, BATCH, FILMS = 8, 2, 12, 24     # 24 distinct films > the cache's max(16, batch)

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("shipped_bundle")]


@pytest.fixture(scope="module")
def shipped():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from pneumo.inference.predictor import Case, Predictor

    pred = Predictor.load()
    root = config.kermany_dir() / "test"
    films = []
    for cls in ("PNEUMONIA", "NORMAL"):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        films += files[:: max(len(files) // (FILMS // 2), 1)][: FILMS // 2]
    labs = [{"wbc": 15.8, "crp": 92.0, "sodium": 133.0}, {"wbc": 7.1, "hemoglobin": 14.2}, None]
    cases = [Case.from_sources(f, labs[i % 3], panel=pred.panel) for i, f in enumerate(films)]
    assert len(cases) == FILMS
    return pred, cases


def test_shared_predictor_under_threads(shipped):
    pred, cases = shipped
    alone = [pred.predict(c).probability for c in cases]           # each case on its own, in turn

    embedded = []                       # how many films the backbone embedded (the cache's misses)
    real_embed = pred.runner.embed_with_trunk

    def counting_embed(xs):
        embedded.append(len(xs))
        return real_embed(xs)

    pred.runner.embed_with_trunk = counting_embed
    lock = threading.Lock()
    errors: list[str] = []
    mismatches: list[str] = []
    scored = [0]
    start = threading.Barrier(THREADS)

    def check(index: int, probability: float, how: str) -> None:
        if abs(probability - alone[index]) > 1e-6:
            with lock:
                mismatches.append(f"{how} case {index}: {probability:.8f} vs {alone[index]:.8f} alone")

    def worker(k: int) -> None:
        rng = random.Random(k)
        try:
            start.wait(timeout=60)
            for _ in range(ROUNDS):
                kind = k % 3
                if kind == 0:                                      # a batch of 12 of the 24 films
                    picks = rng.sample(range(FILMS), BATCH)
                    results = pred.predict_many([cases[i] for i in picks])
                    for i, r in zip(picks, results):
                        if isinstance(r, Exception):
                            raise r
                        check(i, r.probability, "predict_many")
                    n = len(picks)
                elif kind == 1:                                    # single cases, one after another
                    picks = rng.sample(range(FILMS), 3)
                    for i in picks:
                        check(i, pred.predict(cases[i]).probability, "predict")
                    n = len(picks)
                else:                                              # an explanation (Grad-CAM, no SHAP)
                    i = rng.randrange(FILMS)
                    exp = pred.explain(cases[i], shap=False)
                    assert exp.gradcam is not None
                    check(i, exp.result.probability, "explain")
                    n = 1
                with lock:
                    scored[0] += n
        except BaseException as err:  # noqa: BLE001 - counted and reported below
            with lock:
                errors.append(f"thread {k}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=worker, args=(k,), name=f"session-{k}") for k in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    seconds = time.perf_counter() - t0
    pred.runner.embed_with_trunk = real_embed
    print(f"\nconcurrency: {THREADS} threads x {ROUNDS} rounds, {scored[0]} cases in {seconds:.1f} s "
          f"({scored[0] / seconds:.1f} cases/s), {len(errors)} errors, {len(mismatches)} mismatches, "
          f"{sum(embedded)} films embedded for {FILMS} distinct")
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert not mismatches, mismatches[:5]
    assert sum(embedded) > FILMS, "the cache never evicted: the test did not exercise refills"
    assert len(pred._embeddings) <= max(16, BATCH)
