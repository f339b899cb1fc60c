"""The hostile-input corpus (pneumo.hostile): nothing crashes, every refusal is a typed one-line
PneumoError, nothing escapes the manifest root or loads from a tampered bundle, and no patient
identifier reaches a message or a result. Runs on the shipped bundle, else the tiny test bundle."""
from __future__ import annotations

import pytest

from pneumo import config
from pneumo.hostile import KINDS, run_corpus, summarise

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcomes(tiny_bundle, tmp_path_factory):
    from pneumo.predictor import Predictor

    shipped = config.default_model_dir()
    bundle = shipped if (shipped / "bundle.json").is_file() else tiny_bundle
    return run_corpus(tmp_path_factory.mktemp("hostile"), predictor=Predictor.load(bundle), bundle_dir=bundle)


def _show(items):
    return "; ".join(f"{o.kind}/{o.name}: {o.status} {o.error_type} {o.message[:120]}" for o in items)


def test_every_kind_is_tried(outcomes):
    table = summarise(outcomes)
    assert set(table) == set(KINDS)
    assert table["image"]["tried"] >= 15 and table["labs"]["tried"] >= 12
    assert table["manifest"]["tried"] >= 5 and table["bundle"]["tried"] >= 4


def test_nothing_crashes_and_every_refusal_is_one_typed_line(outcomes):
    bad = [o for o in outcomes if o.status in ("crashed", "unclear")]
    assert not bad, _show(bad)
    for o in outcomes:
        if o.status == "handled":
            assert o.message and "\n" not in o.message and "Traceback" not in o.message, o


def test_nothing_escapes(outcomes):
    escaped = [o for o in outcomes if o.status == "escaped"]
    assert not escaped, _show(escaped)
    by_name = {(o.kind, o.name): o for o in outcomes}
    for name in ("dotdot-etc-passwd", "absolute-etc-hostname", "symlink-out", "sub-dotdot-out"):
        assert by_name[("manifest", name)].error_type == "ManifestError"
    for name in ("truncated-weights", "digest-mismatch", "bundle-json-from-another-model"):
        assert by_name[("bundle", name)].error_type == "BundleError"


def test_no_identifier_leaks(outcomes):
    leaked = [o for o in outcomes if o.leaked]
    assert not leaked, _show(leaked)
    phi = [o for o in outcomes if o.name in ("dicom-with-phi.dcm", "dicom-broken-length.dcm",
                                             "dicom-phi-multiframe.dcm", "fhir-with-patient.json")]
    assert len(phi) == 4 and all(o.status in ("accepted", "handled") for o in phi), _show(phi)


def test_refusals_say_why(outcomes):
    by_name = {o.name: o for o in outcomes}
    assert "pixel budget" in by_name["bomb-50000x50000.png"].message
    assert "CT" in by_name["pydicom-CT_small.dcm"].message
    assert "columns" in by_name["wide-10000-columns.csv"].message
    assert "MB" in by_name["big-50MB.csv"].message
