"""The hostile-input corpus (pneumo.qa.hostile): nothing crashes, every refusal is a typed one-line
PneumoError, nothing escapes the manifest root or loads from a tampered bundle, and no patient
identifier reaches a message or a result. Runs on the shipped bundle, else the tiny test bundle."""
from __future__ import annotations

import pytest

from pneumo import config
from pneumo.qa.hostile import KINDS, run_corpus, summarise

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcomes(tiny_bundle, tmp_path_factory):
    from pneumo.inference.predictor import Predictor

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
                                             "dicom-phi-multiframe.dcm", "fhir-with-patient.json",
                                             "bomb-deflate-2GiB-phi.dcm", "bomb-jpeg-sof-60000-phi.dcm")]
    assert len(phi) == 6 and all(o.status in ("accepted", "handled") for o in phi), _show(phi)


def test_refusals_say_why(outcomes):
    by_name = {o.name: o for o in outcomes}
    assert "pixel budget" in by_name["bomb-50000x50000.png"].message
    assert "CT" in by_name["pydicom-CT_small.dcm"].message
    assert "columns" in by_name["wide-10000-columns.csv"].message
    assert "MB" in by_name["big-50MB.csv"].message
    assert "decompression bomb" in by_name["bomb-deflate-2GiB-phi.dcm"].message
    for name in ("bomb-jpeg-sof-60000-phi.dcm", "bomb-jpegls-sof55-60000.dcm", "bomb-j2k-siz-60000.dcm"):
        assert "frame declares 60000x60000" in by_name[name].message, by_name[name]
    assert "inconsistent" in by_name["bomb-jpeg-sof-mismatch.dcm"].message
    assert "multi-frame" in by_name["bomb-apng-1M-frames.png"].message
    assert "multi-frame" in by_name["bomb-tiff-50k-pages.tif"].message
    assert "12000x12000" in by_name["bomb-webp-canvas-12000.webp"].message
    assert "not a finite number" in by_name["fhir-5000-digit-integer.json"].message
    assert "more refused values" in by_name["fhir-error-flood.json"].message


def test_bombs_and_floods_are_refused_or_capped(outcomes):
    from pneumo.qa.hostile_bytes import bombs

    by_name = {o.name: o for o in outcomes}
    for name in bombs():
        assert by_name[name].status == "handled", by_name[name]
        assert by_name[name].error_type in ("ImageError", "UnsupportedImageError"), by_name[name]
    assert by_name["fhir-warning-flood-5MB.json"].status == "accepted"   # capped: see test_hostile_inputs
