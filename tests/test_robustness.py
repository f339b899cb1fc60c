"""pneumo.evaluation.robustness: the centre crop, the field-of-view report, and the shipped model's framing
robustness on the carved validation films (never test)."""
from __future__ import annotations

import numpy as np
import pytest

from pneumo import config
from pneumo.cli import robustness as robustness_cli
from pneumo.errors import PneumoError
from pneumo.evaluation import robustness


def _framed(n: int, s: int = 32, inner: float = 0.5) -> np.ndarray:
    """Films that are bright in a centre square of `inner` of the side, dark outside."""
    x = np.zeros((n, s, s, 1), "float32")
    c = int(s * inner); o = (s - c) // 2
    x[:, o:o + c, o:o + c] = 1.0
    return x


def test_centre_crop_zooms_on_the_centre():
    x = _framed(2)
    assert robustness.centre_crop(x, 1.0) is not None and np.array_equal(robustness.centre_crop(x, 1.0), x)
    cropped = robustness.centre_crop(x, 0.5)
    assert cropped.shape == x.shape and cropped.dtype == np.float32
    assert cropped[:, 2:-2, 2:-2].min() > 0.99        # the bright square now fills the frame
    assert x.mean() < 0.3 < cropped.mean()
    assert 0.0 <= cropped.min() and cropped.max() <= 1.0


@pytest.mark.parametrize("fraction,shape", [(0.0, (1, 8, 8, 1)), (1.5, (1, 8, 8, 1)), (0.5, (1, 8, 6, 1)), (0.5, (8, 8))])
def test_centre_crop_refuses_bad_requests(fraction, shape):
    with pytest.raises(PneumoError):
        robustness.centre_crop(np.zeros(shape, "float32"), fraction)


class _FramingBundle:
    """A stand-in that calls a film pneumonia when its frame is mostly bright (tight framing)."""
    def calibration_for(self, view):
        assert view == "image_only"
        return 1.0, 0.5

    def predict_proba(self, images, labs, calibrated=True):
        assert labs is None and not calibrated
        return np.clip(images.reshape(len(images), -1).mean(1) * 1.6, 0, 1)


def test_field_of_view_report_catches_a_framing_shortcut():
    normals = _framed(10, inner=0.6)        # bright square: 36% of the frame
    normals[:, :, :, 0] *= 0.7              # p 0.40 at full view; the 60% crop is all square: p 1
    pneumonia = _framed(10, inner=0.9)
    x = np.concatenate([normals, pneumonia]); y = np.array([0] * 10 + [1] * 10)
    report = robustness.field_of_view(_FramingBundle(), x, y, fractions=(1.0, 0.6))
    assert report["n"] == 20 and report["n_pos"] == 10 and report["threshold"] == 0.5
    full, tight = report["fractions"]["1"], report["fractions"]["0.6"]
    assert full["specificity"] == 1.0 and full["sensitivity"] == 1.0
    assert tight["specificity"] == 0.0 and tight["normal_median_p"] > 0.5
    assert "crop 0.6: spec 0.000" in robustness.summary_line(report)


def test_field_of_view_needs_both_classes():
    with pytest.raises(PneumoError, match="both classes"):
        robustness.field_of_view(_FramingBundle(), _framed(3), [0, 0, 0])


@pytest.fixture(scope="module")
def shipped_on_val(shipped_bundle):
    """The shipped model on its runtime (LiteRT, equal to Keras within 1e-5: test_runtime_parity)
    and the val films, read once for the module's data tests."""
    from pneumo.inference.lite_runner import load_runner
    runner = load_runner(config.default_model_dir())
    return runner, robustness.kermany_split("val", runner.image_size)


@pytest.mark.data
@pytest.mark.slow
def test_shipped_model_does_not_read_tight_framing_as_pneumonia(shipped_on_val):
    """Val normals cropped to 85% / 70% of their side (tighter framing, same anatomy) keep most
    of their specificity at the model's own image-only threshold. Bounds fixed before the
    framing-robust backbone was trained; the 1.1.0 model scored 0.847 / 0.234 here."""
    bundle, films = shipped_on_val
    report = robustness.field_of_view(bundle, *films)
    print("\n" + robustness.summary_line(report))
    rows = report["fractions"]
    assert rows["1"]["roc_auc"] > 0.98
    assert rows["0.85"]["specificity"] >= 0.90
    assert rows["0.7"]["specificity"] >= 0.75
    assert rows["0.7"]["normal_median_p"] < report["threshold"]


def test_cli_refuses_a_missing_bundle_in_one_line(tmp_path, capsys):
    assert robustness_cli.main(["--bundle", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err


# --- the wider set of acquisition changes -----------------------------------------------

def _ramp(n: int = 2, s: int = 32) -> np.ndarray:
    """Films whose brightness rises left to right and top to bottom: every corner differs."""
    yy, xx = np.mgrid[0:s, 0:s] / (s - 1)
    return np.repeat(((xx + yy) / 2).astype("float32")[None, :, :, None], n, 0)


def test_zoom_out_puts_the_whole_film_in_a_black_border():
    x = np.ones((2, 40, 40, 1), "float32")
    out = robustness.zoom_out(x, 0.5)
    assert out.shape == x.shape and out[:, :8].max() == 0.0 and out[:, -8:].max() == 0.0
    assert out[:, 12:28, 12:28].min() > 0.99
    assert abs(out.mean() - 0.25) < 0.02                   # the film now covers a quarter of the frame


def test_corner_crops_take_opposite_corners():
    x = _ramp()
    tl, br = robustness.corner_crop(x, 0.5, "tl"), robustness.corner_crop(x, 0.5, "br")
    assert tl.shape == br.shape == x.shape
    assert tl.mean() < x.mean() < br.mean()                # the dark corner vs the bright corner
    with pytest.raises(PneumoError):
        robustness.corner_crop(x, 0.5, "middle")


def test_rotation_turns_about_the_centre_and_fills_black():
    x = _ramp()
    quarter = robustness.rotate(x, 90.0)
    assert np.allclose(quarter, np.rot90(x, 1, axes=(1, 2)), atol=1e-5) or \
        np.allclose(quarter, np.rot90(x, -1, axes=(1, 2)), atol=1e-5)
    tilted = robustness.rotate(np.ones((1, 32, 32, 1), "float32"), 10.0)
    assert tilted[0, 0, 0, 0] == 0.0 and tilted[0, 16, 16, 0] > 0.99


def test_gamma_and_noise_keep_the_range_and_the_order():
    x = _ramp()
    bright, dark = robustness.gamma(x, 0.7), robustness.gamma(x, 1.4)
    assert (bright >= x - 1e-6).all() and (dark <= x + 1e-6).all()
    flat = x.reshape(-1)
    assert (np.diff(robustness.gamma(x, 0.7).reshape(-1)[np.argsort(flat)]) >= -1e-6).all()  # monotone
    a, b = robustness.noise(x, 0.05), robustness.noise(x, 0.05)
    assert np.array_equal(a, b) and 0.0 <= a.min() and a.max() <= 1.0 and not np.array_equal(a, x)


def test_jpeg_and_coarser_keep_the_range_and_lose_only_fine_detail():
    x = _ramp()
    rng = np.random.default_rng(0)
    fine = (x + rng.normal(0, 0.1, x.shape)).clip(0, 1).astype("float32")
    for changed in (robustness.jpeg(fine, 20), robustness.coarser(fine, 0.5)):
        assert changed.shape == fine.shape and 0.0 <= changed.min() and changed.max() <= 1.0
        assert np.abs(changed - fine).mean() > 0.01                 # the fine texture is changed
        assert np.abs(changed.mean() - fine.mean()) < 0.01          # the film's overall grey stays
    assert np.abs(robustness.jpeg(x, 95) - x).max() < 0.05           # a smooth film survives a good JPEG
    for bad in (lambda: robustness.jpeg(x, 0), lambda: robustness.coarser(x, 0.01)):
        with pytest.raises(PneumoError):
            bad()


def test_perturbation_report_reads_each_change_at_the_bundles_threshold():
    normals, pneumonia = _framed(10, inner=0.5) * 0.7, _framed(10, inner=0.9)
    x = np.concatenate([normals, pneumonia]); y = np.array([0] * 10 + [1] * 10)
    changes = {"as given": lambda v: v, "tight": lambda v: robustness.centre_crop(v, 0.5),
               "wide": lambda v: robustness.zoom_out(v, 0.5)}
    report = robustness.perturbations(_FramingBundle(), x, y, changes)
    rows = report["changes"]
    assert list(rows) == ["as given", "tight", "wide"] and report["threshold"] == 0.5
    assert rows["as given"]["accuracy"] == 1.0
    assert rows["tight"]["specificity"] == 0.0              # tight framing reads as pneumonia
    assert rows["wide"]["sensitivity"] == 0.0               # wide framing reads as normal
    table = robustness.perturbation_rows(report)
    assert table[0]["AUC change"] == 0.0 and [r["film"] for r in table] == list(rows)
    assert "tight" in robustness.perturbation_lines(report)
    with pytest.raises(PneumoError, match="both classes"):
        robustness.perturbations(_FramingBundle(), x[:10], y[:10], changes)


def _stratified(films, per_class: int = 80, seed: int = 0):
    """A seeded subset of films, per_class of each class, in their original order."""
    x, y = films
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in (0, 1)]))
    return x[idx], y[idx]


@pytest.mark.data
@pytest.mark.slow
def test_shipped_model_under_acquisition_changes(shipped_on_val):
    """Recomputed on 160 val films (80 per class, seeded; the whole split is in metrics.json, checked
    against test films below): exposure changes leave the answer where it was (the model equalises the histogram,
    which a monotone change of intensities does not move), and no mild change costs the image-only
    ROC AUC more than 0.03. The 0.03 bound is a regression guard set after 1.2.0 was first
    measured on val (its worst: noise, -0.022), not a claim fixed in advance."""
    bundle, films = shipped_on_val
    report = robustness.perturbations(bundle, *_stratified(films))
    print("\n" + robustness.perturbation_lines(report))
    rows = report["changes"]
    base = rows["as given"]
    for name in ("brighter (gamma 0.7)", "darker (gamma 1.4)"):
        assert abs(rows[name]["roc_auc"] - base["roc_auc"]) < 0.002, name
    for name, r in rows.items():
        assert r["roc_auc"] >= base["roc_auc"] - 0.03, name


def _sampling_sd(recorded: float, metric: str, n: dict, total: dict) -> float:
    """The sd of a metric on a random subset of n[c] of the split's total[c] films per class, when the
    whole split gives `recorded`: hypergeometric for sensitivity/specificity, Hanley-McNeil for ROC AUC,
    each with the finite-population correction (the subset is drawn without replacement)."""
    def fpc(c):
        return (total[c] - n[c]) / (total[c] - 1)
    if metric in ("specificity", "sensitivity"):
        c = int(metric == "sensitivity")
        return float(np.sqrt(recorded * (1 - recorded) / n[c] * fpc(c)))
    a, n0, n1 = recorded, n[0], n[1]
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n0 * n1)
    return float(np.sqrt(var * max(fpc(0), fpc(1))))


@pytest.mark.data
@pytest.mark.slow
def test_recorded_test_reports_match_the_films(shipped_bundle):
    """metrics.json's test-split reports (written by `python -m pneumo robustness --write` on all 624
    films) against the same reports recomputed here on a seeded 80 + 80 of those films: every change's
    specificity, sensitivity and ROC AUC within 4 sampling sd of the recorded figure. Then the recorded
    figures' claims: exposure leaves the answer, no mild change costs more than 0.03 AUC, framing at
    70% keeps the ranking (its specificity is bounded on val only: the val-to-test gap)."""
    from pneumo.data.cohorts import kermany
    from pneumo.inference.lite_runner import load_runner
    from pneumo.models.bundle import read_metrics

    metrics = read_metrics(config.default_model_dir())
    runner = load_runner(config.default_model_dir())
    frame = kermany.load().frame
    rows = frame[(frame["split"] == "test") & frame["image_path"].notna()].drop_duplicates("image_path")
    labels = rows["label"].to_numpy().astype(int)
    total = {c: int((labels == c).sum()) for c in (0, 1)}
    rng = np.random.default_rng(0)
    idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 80, replace=False) for c in (0, 1)]))
    x, y = robustness.split_films(rows.iloc[idx], "test", runner.image_size)
    computed = {**robustness.perturbations(runner, x, y)["changes"],
                "crop 0.7": robustness.field_of_view(runner, x, y, fractions=(0.7,))["fractions"]["0.7"]}
    recorded = {**metrics["test_perturbations"]["changes"],
                "crop 0.7": metrics["test_field_of_view"]["fractions"]["0.7"]}
    assert metrics["test_perturbations"]["n"] == len(rows) and metrics["test_perturbations"]["n_pos"] == total[1]
    assert metrics["test_perturbations"]["threshold"] == pytest.approx(runner.calibration_for("image_only")[1])
    assert set(computed) == set(recorded)
    n = {c: int((y == c).sum()) for c in (0, 1)}
    for name, r in recorded.items():
        for metric in ("specificity", "sensitivity", "roc_auc"):
            tol = 4 * _sampling_sd(r[metric], metric, n, total) + 1e-9
            assert abs(computed[name][metric] - r[metric]) <= tol, (name, metric, computed[name][metric], r[metric])

    base = recorded["as given"]["roc_auc"]
    for name in ("brighter (gamma 0.7)", "darker (gamma 1.4)"):
        assert abs(recorded[name]["roc_auc"] - base) < 0.002, name
    assert all(r["roc_auc"] >= base - 0.03 for r in recorded.values())
    framing = metrics["test_field_of_view"]["fractions"]
    # tight framing is bounded on val (the model is chosen there); on test its cost is reported, not held:
    # 2.0.0 keeps 0.624 of its test normals at a 70% crop (README limitations)
    assert framing["1"]["roc_auc"] > 0.97 and framing["0.7"]["roc_auc"] > 0.97
