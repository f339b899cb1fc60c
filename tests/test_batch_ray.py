"""`batch --engine ray` on a local Ray: the same OUT (every column) and the same case log as the
in-process engine, a bad row still isolated, and a run stopped part-way finished by --resume."""
from __future__ import annotations

import csv

import pytest

from pneumo import config
from pneumo.inference.predictor import Predictor
from pneumo.service.batch import run_batch
from pneumo.service.batch_ray import RayEngine
from pneumo.service.case_log import CaseLog

pytestmark = [pytest.mark.data, pytest.mark.slow]
FILMS = 12


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from pneumo.data.cohorts import kermany

    paths = kermany.load().split("test").frame["image_path"].tolist()[::50][:FILMS]
    m = tmp_path_factory.mktemp("ray") / "manifest.csv"
    with open(m, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_path", "wbc", "note"])
        for i, p in enumerate(paths):
            w.writerow([p, "" if i % 2 else "13.5", f"n{i}"])
        w.writerow(["no-such-film.png", "", "missing"])          # a bad row: its error, the rest scored
        w.writerow([paths[0], "99999", "implausible"])
    return m


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module (each start costs seconds); the engine leaves a running Ray up."""
    from pneumo.service.batch_ray import _start

    ray, started = _start(None)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load(config.default_model_dir())


@pytest.fixture(scope="module")
def in_process(manifest, predictor, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out.csv"
    log = CaseLog(out.parent / "cases.sqlite")
    s = run_batch(manifest, out, root="/", predictor=predictor, log=log, progress=False)
    return _rows(out), log.count(batch_id=s.batch_id)


def _rows(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k != "batch_id"} for r in csv.DictReader(fh)]


def _engine(predictor, workers=2):
    return RayEngine(predictor.runner.bundle.path, workers=workers)


def test_ray_gives_the_in_process_answers_and_log(manifest, in_process, tmp_path, monkeypatch, capsys):
    from pneumo.cli.main import main

    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    want, logged = in_process
    out = tmp_path / "out.csv"
    assert main(["batch", str(manifest), "--out", str(out), "--root", "/", "--engine", "ray", "--workers", "2",
                 "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"scored {FILMS}, errors 2 in "), err    # one line, Ray's quiet
    assert _rows(out) == want
    with open(out, newline="") as fh:
        batch_id = next(csv.DictReader(fh))["batch_id"]
    assert CaseLog(tmp_path / "home" / "cases.sqlite").count(batch_id=batch_id) == logged == FILMS
    errors = {r["note"]: r["error"] for r in want if r["error"]}
    assert set(errors) == {"missing", "implausible"} and "not found" in errors["missing"]


class _Stop(Exception):
    pass


def test_a_ray_run_stopped_part_way_is_finished_by_resume(manifest, predictor, in_process, tmp_path):
    out = tmp_path / "out.csv"
    seen = []

    def stop_after_five(row):
        seen.append(row)
        if len(seen) == 5:
            raise _Stop

    with pytest.raises(_Stop):
        run_batch(manifest, out, root="/", predictor=predictor, progress=False, on_row=stop_after_five,
                  engine=_engine(predictor, workers=1))
    assert len(_rows(out)) == 5
    s = run_batch(manifest, out, root="/", predictor=predictor, progress=False, resume=True, engine=_engine(predictor))
    assert s.skipped_resumed == 5 and s.scored + s.errors == FILMS + 2 - 5
    assert _rows(out) == in_process[0]
