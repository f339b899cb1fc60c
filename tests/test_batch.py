"""pneumo.service.batch with a fake predictor: carried columns, per-row errors, traversal, formula
cells, chunked predict_many, resume after a torn line, the CLI's exit codes."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumo.cli.batch import main
from pneumo.data.imaging import pixel_digest
from pneumo.data.labs import default_panel
from pneumo.errors import ManifestError, UnsupportedImageError
from pneumo.inference.case import Case, Result
from pneumo.inference.intended_use import KERMANY_CHILDREN, OUTSIDE, FilmReading, assess
from pneumo.service.batch import ADDED, _Progress, read_header, run_batch
from pneumo.service.case_log import CaseLog


CHILD_FRONTAL = FilmReading(0.1, 0.9, adult=False, lateral=False)   # what the learned check says of a child's film


def FakeResult(probability: float, label: str, **fields) -> Result:  # noqa: N802 - test_failures imports this name
    """The real Result (pneumo.inference.case), filled as a stand-in model fills it."""
    fields.setdefault("model", {"name": "fake", "version": "0.0.1", "weights_sha256": "0" * 64})
    fields.setdefault("modality_contribution", {"image": 0.1, "labs": 0.0})
    fields.setdefault("modalities", {"image": True, "labs": False})
    return Result(probability, label, fields.pop("threshold", 0.5), fields.pop("band", "clear"), **fields)


class FakePredictor:
    """Probability = mean pixel; a near-black film is refused like a non-radiograph; the intended use
    is judged by the real rule (pneumo.inference.intended_use.assess) on the manifest's age."""

    def __init__(self):
        self.panel = default_panel()
        self.population = KERMANY_CHILDREN
        self.many_calls: list[int] = []
        self.seen_labs: list[dict | None] = []

    def predict(self, case: Case, *, allow_outside: bool = True) -> Result:
        if case.image is not None and float(case.image.pixels.mean()) < 0.02:
            raise UnsupportedImageError("image is almost black; not a chest radiograph")
        self.seen_labs.append(None if case.labs is None else dict(case.labs.values))
        p = float(case.image.pixels.mean()) if case.image is not None else 0.5
        warnings = [] if case.labs is not None else ["no labs given"]
        use = assess(self.population, has_image=case.image is not None, given_age=case.age_years,
                     film=CHILD_FRONTAL if case.image is not None else None)
        label = "PNEUMONIA" if p >= 0.5 else "NORMAL"
        return FakeResult(p, label if allow_outside or use.status != OUTSIDE else "", warnings=warnings,
                          modalities={"image": case.image is not None, "labs": case.has_labs},
                          intended_use=use.status, intended_use_reason=use.reason,
                          image_digest=None if case.image is None else pixel_digest(case.image.pixels))

    def predict_many(self, cases: list[Case], *, allow_outside: bool = True) -> list[Result]:
        self.many_calls.append(len(cases))
        return [self.predict(c, allow_outside=allow_outside) for c in cases]


def write_png(path: Path, seed: int, size: int = 128, level: float | None = None) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.3 + 0.4 * np.sin(6 * xx + seed) * np.cos(4 * yy) ** 2 + 0.05 * rng.standard_normal((size, size))
    if level is not None:
        img = np.full((size, size), level)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L").save(path)


def write_manifest(path: Path, rows: list[dict]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def read_out(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def cohort(tmp_path):
    """A manifest of good rows and one of every kind of bad row."""
    root = tmp_path / "data"
    for i in range(6):
        write_png(root / "img" / f"c{i}.png", i)
    write_png(root / "img" / "black.png", 0, level=0.0)
    (root / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    outside = tmp_path / "outside.png"
    write_png(outside, 99)
    (root / "img" / "link.png").symlink_to(outside)
    rows = [
        {"image_path": "img/c0.png", "case": "A1", "label": "1", "wbc": "14.5", "Sodium": "139",
         "note": "fine"},
        {"image_path": "img/c1.png", "case": "A2", "label": "0", "wbc": "", "Sodium": "", "note": ""},
        {"image_path": "img/c2.png", "case": "A3", "label": "0", "wbc": "abc", "note": "bad lab"},
        {"image_path": "img/c3.png", "case": "A4", "label": "1", "wbc": "9999", "note": "implausible"},
        {"image_path": "img/missing.png", "case": "A5", "note": "no such file"},
        {"image_path": "img/corrupt.png", "case": "A6", "note": "corrupt"},
        {"image_path": "img/black.png", "case": "A7", "note": "refused"},
        {"image_path": "../../etc/passwd", "case": "A8", "note": "traversal"},
        {"image_path": "/etc/hostname", "case": "A9", "note": "absolute"},
        {"image_path": "img/link.png", "case": "A10", "note": "symlink out"},
        {"image_path": "img/c4.png", "case": "=HYPERLINK(\"http://evil\",\"x\")", "note": "+cmd|' /C calc'!A0"},
        {"image_path": "img/c5.png", "case": "A12", "wbc": "7.1", "note": "@SUM(A1)"},
    ]
    manifest = root / "manifest.csv"
    write_manifest(manifest, rows)
    return manifest, rows


def test_carried_columns_errors_and_escaping(cohort, tmp_path):
    manifest, rows = cohort
    out = tmp_path / "out" / "scored.csv"
    pred = FakePredictor()
    log = CaseLog(tmp_path / "home" / "cases.sqlite")
    seen = []
    s = run_batch(manifest, out, predictor=pred, log=log, progress=False, on_row=seen.append)
    got = read_out(out)
    assert [r["row"] for r in got] == [str(i) for i in range(1, len(rows) + 1)] and len(seen) == len(rows)
    header = list(got[0])
    assert header[:2] == ["row", "image_path"] and header[-len(ADDED):] == list(ADDED)
    assert "manifest_label" in header                    # the ground truth is kept, not overwritten
    by_case = {r["case"]: r for r in got}
    ok = ["A1", "A2", "A12"]
    for case in ok:
        r = by_case[case]
        assert r["error"] == "" and 0 <= float(r["probability"]) <= 1 and r["label"] in ("PNEUMONIA", "NORMAL")
        assert r["threshold"] == "0.500000" and r["model_version"] == "0.0.1" and r["batch_id"] == s.batch_id
    assert by_case["A1"]["manifest_label"] == "1" and by_case["A1"]["note"] == "fine"
    assert by_case["A2"]["warnings"] == "no labs given"   # an all-empty lab row is an image-only case
    assert {"wbc": 14.5, "sodium": 139.0}.items() <= pred.seen_labs[0].items()
    errors = {r["case"]: r["error"] for r in got if r["error"]}
    assert "wbc" in errors["A3"] and "not a number" in errors["A3"]
    assert "plausible" in errors["A4"]
    assert errors["A5"] and errors["A6"]
    assert "black" in errors["A7"]
    for case in ("A8", "A9", "A10"):
        assert "outside" in errors[case], errors[case]
        assert by_case[case]["probability"] == ""
    assert all("\n" not in e and "Traceback" not in e for e in errors.values())
    escaped = by_case["'=HYPERLINK(\"http://evil\",\"x\")"]
    assert escaped["error"] == "" and escaped["note"] == "'+cmd|' /C calc'!A0"
    assert by_case["A12"]["note"] == "'@SUM(A1)"
    for line in out.read_text().splitlines():
        assert not any(cell.startswith(("=", "+", "@")) for cell in next(csv.reader([line])))
    assert (s.scored, s.errors, s.skipped_resumed, s.rows) == (4, 8, 0, 12)
    assert log.count() == 4 and log.batch_rows(s.batch_id) == {1, 2, 11, 12}


def test_predict_many_in_chunks_and_a_bad_case_isolated(tmp_path):
    root = tmp_path
    rows = []
    for i in range(20):
        write_png(root / f"{i}.png", i, level=0.0 if i == 5 else None)
        rows.append({"image_path": f"{i}.png"})
    write_manifest(root / "m.csv", rows)
    pred = FakePredictor()
    s = run_batch(root / "m.csv", root / "o.csv", predictor=pred, progress=False, chunk_size=8)
    assert pred.many_calls == [8, 8, 4]             # the first chunk failed as a whole, then per case
    got = read_out(root / "o.csv")
    assert (s.scored, s.errors) == (19, 1) and got[5]["error"] and not got[4]["error"]


def test_resume_after_a_torn_last_line(cohort, tmp_path):
    manifest, rows = cohort
    full, out = tmp_path / "full.csv", tmp_path / "out.csv"
    log = CaseLog(tmp_path / "cases.sqlite")
    run_batch(manifest, full, predictor=FakePredictor(), progress=False)
    data = full.read_bytes()
    lines = data.splitlines(keepends=True)
    torn = b"".join(lines[:6]) + lines[6][: len(lines[6]) // 2]     # header + 5 rows + half a row
    out.write_bytes(torn)
    s = run_batch(manifest, out, predictor=FakePredictor(), resume=True, log=log, progress=False)
    assert s.skipped_resumed == 5 and s.scored + s.errors == len(rows) - 5
    got, want = read_out(out), read_out(full)
    assert [r["row"] for r in got] == [r["row"] for r in want]       # every row once, in order
    strip = lambda r: {k: v for k, v in r.items() if k != "batch_id"}  # noqa: E731
    assert [strip(r) for r in got] == [strip(r) for r in want]
    assert len({r["batch_id"] for r in got}) == 1                    # resume keeps the batch id
    again = run_batch(manifest, out, predictor=FakePredictor(), resume=True, log=log, progress=False)
    assert again.skipped_resumed == len(rows) and again.scored == 0 and read_out(out) == got
    # rows 11, 12 scored now, and 1, 2 (scored by the first run, which had no log) logged by the resume
    assert log.count() == 4 and s.backfilled == 2 and again.backfilled == 0


def test_resume_refuses_an_out_of_another_manifest(cohort, tmp_path):
    manifest, _ = cohort
    out = tmp_path / "other.csv"
    out.write_text("row,image_path,probability\n1,a.png,0.5\n")
    with pytest.raises(ManifestError, match="columns differ"):
        run_batch(manifest, out, predictor=FakePredictor(), resume=True, progress=False)


def test_resume_with_no_out_or_a_torn_header_starts_over(cohort, tmp_path):
    manifest, rows = cohort
    out = tmp_path / "o.csv"
    s = run_batch(manifest, out, predictor=FakePredictor(), resume=True, progress=False)
    assert s.scored + s.errors == len(rows)
    out.write_bytes(out.read_bytes()[:7])
    s = run_batch(manifest, out, predictor=FakePredictor(), resume=True, progress=False)
    assert s.skipped_resumed == 0 and len(read_out(out)) == len(rows)


def test_bad_manifests(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("path,wbc\na.png,1\n")
    dup = tmp_path / "dup.csv"
    dup.write_text("image_path,wbc,wbc\na.png,1,2\n")
    for path, msg in ((empty, "empty"), (nocol, "no 'image_path'"), (dup, "repeats"),
                      (tmp_path / "absent.csv", "not found")):
        with pytest.raises(ManifestError, match=msg):
            read_header(path)
    good = tmp_path / "good.csv"
    good.write_text("image_path\na.png\n")
    with pytest.raises(ManifestError, match="manifest itself"):
        run_batch(good, good, predictor=FakePredictor())
    assert good.read_text() == "image_path\na.png\n"


def test_extra_cells_and_labs_only_rows(tmp_path):
    write_png(tmp_path / "a.png", 1)
    (tmp_path / "m.csv").write_text("image_path,wbc,case\na.png,5,A1,surplus\n,6.5,A2\n\n,,A3\n")
    s = run_batch(tmp_path / "m.csv", tmp_path / "o.csv", predictor=FakePredictor(), progress=False)
    got = read_out(tmp_path / "o.csv")
    assert "more cells" in got[0]["error"]
    assert got[1]["error"] == "" and got[1]["probability"] == "0.500000"   # labs only: scored
    assert "no image_path and no lab values" in got[2]["error"]
    assert (s.scored, s.errors) == (1, 2)


def test_cli_bad_manifest_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,wbc\nx.png,1\n")
    assert main([str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err
    assert main([str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")]) == 2


def test_progress_lines():
    buf = io.StringIO()
    bar = _Progress(120, True, stream=buf)
    for i in range(1, 121):
        bar.update(i, i)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert [ln.split()[0] for ln in lines] == ["50/120", "100/120", "120/120"]
    assert lines[0].endswith("cases/s")
    quiet = io.StringIO()
    _Progress(10, False, stream=quiet).update(10, 10)
    assert quiet.getvalue() == ""


def test_on_a_terminal_progress_rewrites_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    buf = Tty()
    bar = _Progress(3, True, stream=buf)
    for i in (1, 2, 3):
        bar.update(i, i)
    bar.close()
    assert buf.getvalue().startswith("\r  1/3") and buf.getvalue().endswith("3/3  " + buf.getvalue().split()[-2] + " cases/s\n")


class ErrorsInPlacePredictor(FakePredictor):
    """Like pneumo.inference.predictor.Predictor.predict_many: a refused case is returned as its error."""

    def predict_many(self, cases):
        self.many_calls.append(len(cases))
        out = []
        for c in cases:
            try:
                out.append(self.predict(c))
            except UnsupportedImageError as err:
                out.append(err)
        return out


def test_predict_many_returning_errors_in_place(tmp_path):
    for i in range(5):
        write_png(tmp_path / f"{i}.png", i, level=0.0 if i == 2 else None)
    write_manifest(tmp_path / "m.csv", [{"image_path": f"{i}.png"} for i in range(5)])
    pred = ErrorsInPlacePredictor()
    log = CaseLog(tmp_path / "c.sqlite")
    s = run_batch(tmp_path / "m.csv", tmp_path / "o.csv", predictor=pred, log=log, progress=False)
    got = read_out(tmp_path / "o.csv")
    assert pred.many_calls == [5] and (s.scored, s.errors) == (4, 1) and log.count() == 4
    assert "black" in got[2]["error"] and got[2]["probability"] == ""


def test_a_case_outside_the_intended_use_has_no_label_unless_asked(tmp_path):
    """The manifest's age puts a row outside the intended use: its probability, no label (the rule on
    every surface), its verdict in OUT and in the case log; --allow-outside gives the label too."""
    for i in range(3):
        write_png(tmp_path / f"{i}.png", i, level=0.6)
    write_manifest(tmp_path / "m.csv", [{"image_path": "0.png", "age": "45"}, {"image_path": "1.png", "age": "3"},
                                        {"image_path": "2.png", "age": ""}])
    log = CaseLog(tmp_path / "c.sqlite")
    run_batch(tmp_path / "m.csv", tmp_path / "o.csv", predictor=FakePredictor(), log=log, progress=False)
    adult, child, no_age = read_out(tmp_path / "o.csv")
    assert (adult["intended_use"], adult["label"], adult["error"]) == ("outside", "", "")
    assert float(adult["probability"]) == pytest.approx(0.6, abs=0.01)
    assert (child["intended_use"], child["label"]) == ("within", "PNEUMONIA")
    assert (no_age["intended_use"], no_age["label"]) == ("within", "PNEUMONIA")
    assert sorted(log.recent()["intended_use"]) == ["outside", "within", "within"]
    run_batch(tmp_path / "m.csv", tmp_path / "all.csv", predictor=FakePredictor(), progress=False, allow_outside=True)
    assert [r["label"] for r in read_out(tmp_path / "all.csv")] == ["PNEUMONIA"] * 3

