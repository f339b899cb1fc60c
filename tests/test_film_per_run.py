"""The paper's protocol end to end: the same-source cohort (one release, split by patient at random)
and the film network trained per run on that run's train films only (pneumo.experiments.film_per_run)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumo import config
from pneumo.data.cohorts import same_source
from pneumo.data.cohorts.base import Cohort
from pneumo.data.labs.catalogue import panel_of
from pneumo.experiments import film_per_run
from pneumo.experiments import protocol as experiments
from pneumo.experiments.config import ConfigError, FilmSpec, from_dict, load

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY = {"name": "tinyfilm", "runs": 2, "seeds": [0, 1], "image_size": 32, "bootstrap": 40,
        "regimes": ["imbalanced", "adasyn"], "models": ["fusion"],
        "cohort": {"source": "synthetic", "n": 80, "synthetic_image_size": 64, "n_pos": 16, "n_neg": 40,
                   "min_test_positives": 3},
        "film": {"mode": "per_run", "start": "random", "epochs": 1, "patience": 1},
        "train": {"epochs": 2, "patience": 1}}


# ----------------------------------------------------------------------------- same-source cohort
def _fake_kermany(n_pos_patients=70, n_neg_patients=620) -> Cohort:
    """A Kermany-shaped frame: pneumonia patients with 1-3 films, normal patients with one; some test films."""
    rows = []
    for i in range(n_pos_patients):
        for k in range(1 + i % 3):
            rows.append((f"train/PNEUMONIA/person{i}_bacteria_{k}.jpeg", f"person{i}", 1, "train"))
    for i in range(n_neg_patients):
        rows.append((f"train/NORMAL/IM-{i:04d}-0001.jpeg", f"IM-{i:04d}", 0, "train"))
    for i in range(40):
        rows.append((f"test/NORMAL/IM-{i:04d}-0001.jpeg", f"test:IM-{i:04d}", 0, "test"))
    f = pd.DataFrame(rows, columns=["case_id", "patient_id", "label", "official_split"])
    f = f.assign(image_path="/films/" + f["case_id"], split=f["official_split"], source="kermany")
    return Cohort(f, None, "kermany", {"source": "kermany", "title": "Kermany"})


def _fake_labs() -> Cohort:
    rows = [(f"lab-{s}-{c}-{i}", f"subj-{s}-{c}-{i // 2}", c, s, float(i))
            for s in ("train", "val", "test") for c in (0, 1) for i in range(6)]
    f = pd.DataFrame(rows, columns=["case_id", "patient_id", "label", "split", "wbc"])
    f = f.assign(image_path=None, source="mimic")
    return Cohort(f, panel_of(["wbc"]), "labs", {"source": "labs"})


def _check_same_source(c: Cohort, release="train"):
    f = c.frame
    counts = f.groupby(["split", "label"]).size().to_dict()
    assert counts == {("train", 1): 30, ("train", 0): 300, ("val", 1): 10, ("val", 0): 100,
                      ("test", 1): 10, ("test", 0): 100}
    assert len(f) == 550 and f["patient_id"].is_unique and f["image_path"].is_unique   # one film per patient
    assert f["patient_id"].groupby(f["split"]).apply(set).pipe(
        lambda s: not (s["train"] & s["val"] or s["train"] & s["test"] or s["val"] & s["test"]))
    for col in ("lab_case_id", "lab_patient_id"):          # lab panels never cross splits either
        per = f.groupby("split")[col].apply(set)
        assert not (per["train"] & per["test"] or per["val"] & per["test"] or per["train"] & per["val"]), col
    assert (f["image_case_id"].str.startswith(f"{release}/")).all()
    assert c.semi_real and c.description["variant"] == "same-source" and "\n" not in c.description["variant_line"]


def test_same_source_draws_50_500_from_one_release_split_by_patient():
    c = same_source.draw(_fake_kermany(), _fake_labs(), seed=3)
    _check_same_source(c)
    again = same_source.draw(_fake_kermany(), _fake_labs(), seed=3)
    assert again.frame["case_id"].tolist() == c.frame["case_id"].tolist()          # seeded
    other = same_source.draw(_fake_kermany(), _fake_labs(), seed=4)
    assert set(other.frame["patient_id"]) != set(c.frame["patient_id"])            # at random
    pos = c.frame[c.frame["label"] == 1]
    assert pos["image_case_id"].str.endswith("_0.jpeg").all()    # the patient's first film by name


def test_same_source_refuses_a_release_too_small():
    with pytest.raises(Exception, match="patients of class 1"):
        same_source.draw(_fake_kermany(n_pos_patients=40), _fake_labs())


@pytest.mark.data
def test_same_source_on_the_real_release():
    from pneumo.data.cohorts import kermany, mimic
    _check_same_source(same_source.draw(kermany.load(val_fraction=0.0), mimic.load(seed=0), seed=0))


# ----------------------------------------------------------------------------- config
def test_the_same_source_config_parses_and_a_frozen_same_source_is_refused():
    cfg = load(config.REPO_ROOT / "configs" / "paper-same-source.toml")
    assert cfg.cohort.source == "same-source" and cfg.film.mode == "per_run" and cfg.runs == 5
    assert cfg.film.start == "imagenet" and cfg.film.freeze_before == "block5_expand_conv"
    assert load(config.REPO_ROOT / "configs" / "paper.toml").film.mode == "frozen"   # the fast variant stays
    with pytest.raises(ConfigError, match="per_run"):
        from_dict(dict(TINY, cohort={"source": "same-source"}, film={"mode": "frozen"}, encoder={"weights": "bundle"}))
    with pytest.raises(ConfigError):
        from_dict(dict(TINY, film={"mode": "sometimes"}))


# ----------------------------------------------------------------------------- the stem cache
def test_cached_stem_maps_equal_a_direct_forward_pass(tmp_path, monkeypatch):
    """The cached rows equal the stem on the same films, and stem + tail equals the whole encoder.
    Tolerance 1e-5 absolute: the same float32 graph, batched differently (oneDNN may sum in another order)."""
    import keras
    from PIL import Image

    from pneumo.data.imaging import load_for_model
    from pneumo.models import network as pm
    monkeypatch.setenv("PNEUMO_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        p = tmp_path / f"film{i}.png"
        Image.fromarray(rng.integers(0, 255, (80, 96), dtype=np.uint8)).save(p)
        paths.append(str(p))
    spec = FilmSpec(mode="per_run", start="random")
    start = film_per_run.build_start(64, spec)
    maps = film_per_run.stem_maps(start, paths, batch_size=2)
    assert maps.computed == 5 and film_per_run.stem_maps(start, paths).computed == 0    # the second read is the cache
    x = np.stack([load_for_model(p, 64)[0] for p in paths])
    early, cut = (np.asarray(t) for t in start.stem(x, training=False))
    np.testing.assert_allclose(maps.img_early, early, atol=1e-5)
    np.testing.assert_allclose(maps.img_late, cut, atol=1e-5)
    keras.utils.set_random_seed(0)       # the seed build_start used: the same random weights
    full = pm.build_image_encoder(64, intensity=spec.intensity, backbone=spec.backbone)
    whole_early, whole_late = (np.asarray(t) for t in full(x, training=False))
    np.testing.assert_allclose(early, whole_early, atol=1e-5)
    np.testing.assert_allclose(np.asarray(start.tail(cut, training=False)), whole_late, atol=1e-5)
    other = FilmSpec(mode="per_run", start="random", intensity="none")      # the tag keys what weights do not say
    assert film_per_run.stem_maps(film_per_run.build_start(64, other), paths).computed == 5


# ----------------------------------------------------------------------------- per-run training
def test_each_run_trains_its_film_network_on_its_own_train_films_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_CACHE_DIR", str(tmp_path / "cache"))
    seen, starts = [], []
    real, real_dataset = film_per_run.fit_film_network, film_per_run._dataset

    def spy(start, maps, train_paths, y_train, val_paths, y_val, *, seed, log=print):
        seen.append((list(train_paths), list(val_paths), seed, start))
        return real(start, maps, train_paths, y_train, val_paths, y_val, seed=seed, log=log)

    def dataset_spy(*args, **kw):       # built after the reset, before the first step: the run's starting tail
        starts.append([w.copy() for w in seen[-1][3].tail.get_weights()[:4]])
        return real_dataset(*args, **kw)
    monkeypatch.setattr(film_per_run, "fit_film_network", spy)
    monkeypatch.setattr(film_per_run, "_dataset", dataset_spy)
    lines = []
    results, path = experiments.run_experiment(from_dict(TINY), out_dir=tmp_path / "results", progress=lines.append)
    frame = experiments.build_cohort(from_dict(TINY), tmp_path / "cohort").frame   # the same draw, another folder
    name = lambda p: p.rsplit("/", 1)[-1]    # noqa: E731 - the grid drew its films in its own temporary folder
    split = {name(p): s for p, s in zip(frame["image_path"], frame["split"])}
    assert [s[2] for s in seen] == [0, 1]
    for train_paths, val_paths, _, _ in seen:
        assert {split[name(p)] for p in train_paths} == {"train"} and {split[name(p)] for p in val_paths} == {"val"}
        assert {name(p) for p in train_paths} == {name(p) for p in frame.loc[frame["split"] == "train", "image_path"]}
    assert len(starts) == 2
    for a, b in zip(*starts):       # every run starts from the same start, not from the last run's tail
        np.testing.assert_array_equal(a, b)
    enc = results["protocol"]["encoder"]
    assert enc["mode"] == "per_run" and len(enc["runs"]) == 2 and results["timing"]["film_seconds"] > 0
    film_recs = [r["film"] for e in results["entries"] for r in e["runs"]]
    assert {f["seed"] for f in film_recs} == {0, 1}
    assert sum(line.startswith("film network") for line in lines) == 2      # one film network per run, not per regime
    assert path.is_file()
    _reproduces(results, tmp_path)


def _reproduces(results: dict, tmp_path) -> None:
    """Seed 0 again (`experiment --check --runs 1`): the same fits bit for bit on this machine; a
    perturbed probability is "same answers", a moved count "differs", another config or seed "not comparable"."""
    import copy

    from pneumo.experiments import reproduce
    again, _ = experiments.run_experiment(from_dict(dict(TINY, runs=1, seeds=[0])), out_dir=tmp_path / "again",
                                          progress=lambda _: None)
    same = reproduce.compare(again, results)
    assert (same.verdict, same.max_prob_diff, same.runs_compared) == ("bit for bit", 0.0, 2), same.lines()
    nudged = copy.deepcopy(again)
    nudged["entries"][0]["test_cases"]["p"][0][0] += 1e-9
    assert reproduce.compare(nudged, results).verdict == "same answers"
    moved = copy.deepcopy(again)
    run = moved["entries"][0]["runs"][0]["test"]
    run["tp"], run["fn"] = run["tp"] - 1, run["fn"] + 1
    check = reproduce.compare(moved, results)
    assert check.verdict == "differs" and "seed 0: test tp/fp/fn/tn" in check.differences[0]
    for key, value in (("epochs", 99), ("max_minutes", 1.0)):     # the budget is a safety net, not the protocol
        other = copy.deepcopy(again)
        other["config"]["film"][key] = value
        assert reproduce.compare(other, results).verdict == ("bit for bit" if key == "max_minutes" else "not comparable")
    other = copy.deepcopy(again)
    other["seeds"] = [8]
    assert reproduce.compare(other, results).verdict == "not comparable"


# ----------------------------------------------------------------------------- both variants, labelled
def _results(name: str, variant: str | None, f1: float) -> dict:
    stat = {"mean": f1, "sd": 0.01, "ci_low": f1 - 0.1, "ci_high": f1 + 0.05}
    cohort = {"name": "kermany+mimic-demo (semi-real)", "counts": {"test": {"1": 10, "0": 100}}}
    if variant:
        cohort.update(variant=variant, variant_line=f"{variant}: where its films come from")
    return {"schema": "pneumo.results/1", "experiment": name, "n_runs": 5, "cohort": cohort,
            "protocol": {"encoder": {"weights": "bundle"}}, "timing": {"wall_seconds": 600},
            "comparisons": [{"model": "fusion", "regime": "adasyn", "versus": "imbalanced", "metric": "f1",
                             "difference": 0.02, "ci_low": -0.03, "ci_high": 0.07}],
            "entries": [{"model": "fusion", "regime": "imbalanced",
                         "summary": {"test": {"f1": stat, "mcc": stat}, "train": {"f1": stat}}}]}


def test_tables_print_the_paper_beside_both_variants_each_labelled(tmp_path):
    import json
    import subprocess
    import sys
    (tmp_path / "paper-50-500.json").write_text(json.dumps(_results("paper-50-500", None, 0.56)))
    (tmp_path / "paper-same-source.json").write_text(json.dumps(_results("paper-same-source", "same-source", 0.91)))
    out = subprocess.run([sys.executable, "-m", "pneumo", "tables", "--results", str(tmp_path)],
                         capture_output=True, text=True, cwd=config.REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "0.9501" in text and "0.9455" in text and "96.0" in text                      # the paper's figures
    assert "Test (official-test)" in text and "Test (same-source)" in text
    assert "0.5600 [0.4600, 0.6100]" in text and "0.9100 [0.8100, 0.9600]" in text
    assert "official-test: train/val films from Kermany's official train" in text        # an old file, labelled
    assert "same-source: where its films come from" in text and "f1 +0.020 [-0.030, +0.070]" in text
    assert "Read the paper's Table 2 with care" in text      # its F1 and MCC against its own accuracy


# ----------------------------------------------------------------------------- reproduction
def test_a_run_cut_by_the_time_budget_is_named_so():
    from pneumo.training.backbone import kept_epoch, stop_reason
    rows = lambda flags: [{"epoch": i + 1, "improved": f} for i, f in enumerate(flags)]   # noqa: E731
    assert stop_reason(rows([True] * 5), epochs=5, patience=2) == "epochs"
    assert stop_reason(rows([True, True, False, False]), epochs=9, patience=2) == "patience"
    assert stop_reason(rows([True, True, False]), epochs=9, patience=2) == "time budget"
    assert kept_epoch(rows([True, False, True, False]))["epoch"] == 3     # a later tie with lower val loss is kept
