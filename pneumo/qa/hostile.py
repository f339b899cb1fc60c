"""A corpus of hostile inputs (images, labs, manifest paths, bundles), written to a temp dir,
each run through the entry point a user would hit and classified.

Outcomes: "accepted" (read/scored), "handled" (refused with a PneumoError whose message is one
clean line), "unclear" (a PneumoError with a multi-line/traceback/empty message), "crashed"
(any other exception), "escaped" (accepted where it must be refused: a path out of the root,
a tampered bundle). `leaked` lists the patient identifiers found in any message or result.
Nothing here is committed: the corpus is made fresh in a temp dir on every run.

The files' bytes (a DICOM with identifiers, the bombs) are built by pneumo.qa.hostile_bytes."""
from __future__ import annotations

import io
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pneumo.data.cohorts.manifest import resolve_inside
from pneumo.data.labs import default_panel
from pneumo.errors import PneumoError
from pneumo.inference.predictor import Case, Predictor
from pneumo.models.bundle import WEIGHTS_FILE, sha256_file
from pneumo.qa.hostile_bytes import PHI, PHI_STRINGS, bombs, chest_like, dicom_bytes, encode, png_header_only

KINDS = ("image", "labs", "manifest", "bundle")


@dataclass
class Probe:
    kind: str
    name: str
    run: Callable[[], object]
    identifiers: tuple[str, ...] = ()
    must_refuse: bool = False


@dataclass
class Outcome:
    kind: str
    name: str
    status: str                       # accepted | handled | unclear | crashed | escaped
    error_type: str | None = None
    message: str = ""
    leaked: list = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _image_files(d: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """name -> (file, identifiers that must not leak)."""
    import pydicom
    from PIL import Image

    rng = np.random.default_rng(0)
    gray = Image.fromarray((chest_like(320, 384, bits=8)).astype(np.uint8))
    png, jpeg = encode(gray, "PNG"), encode(gray, "JPEG", quality=90)
    rgb = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).resize((400, 300))
    frames = [Image.fromarray(np.full((128, 128), v, np.uint8)) for v in (30, 200)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    files = {
        "empty-0-byte.png": b"",
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "jpeg-named.png": jpeg,
        "png-named.dcm": png,
        "random-bytes.jpg": rng.bytes(20_000),
        "text-as-image.png": b"<html><body>not an image</body></html>\n",
        "bomb-50000x50000.png": png_header_only(50_000, 50_000),
        "gray-16bit.png": encode(Image.fromarray(chest_like(320, 384, bits=16)), "PNG"),
        "cmyk.jpg": encode(gray.convert("CMYK"), "JPEG"),
        "animated.gif": gif.getvalue(),
        "rgb-photo.jpg": encode(rgb, "JPEG"),
        "tiny-16x16.png": encode(gray.resize((16, 16)), "PNG"),
        "dicom-huge-dims.dcm": dicom_bytes(60_000, 60_000, pixel_bytes=b"\x00" * 1024),
        "dicom-broken-length.dcm": dicom_bytes(512, 512, pixel_bytes=b"\x00" * 5000, phi=True),
        "dicom-with-phi.dcm": dicom_bytes(512, 512, phi=True),
        "dicom-phi-multiframe.dcm": dicom_bytes(256, 256, phi=True, NumberOfFrames=2,
                                                pixel_bytes=b"\x00" * (256 * 256 * 4)),
        **{name: build() for name, build in bombs().items()},
    }
    out = {}
    for name, data in files.items():
        (d / name).write_bytes(data)
        out[name] = (d / name, PHI_STRINGS if "phi" in name or "broken" in name else ())
    for test_file in ("CT_small.dcm", "MR_small.dcm"):   # real CT/MR samples shipped with pydicom
        try:
            path = Path(pydicom.data.get_testdata_file(test_file))
        except Exception:   # noqa: BLE001 - a pydicom without its test files: skip the probe
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        idents = tuple(str(v) for v in (ds.get("PatientName"), ds.get("PatientID")) if v and str(v).strip())
        out[f"pydicom-{test_file}"] = (path, tuple(p for i in idents for p in str(i).split("^") if len(p) > 3))
    (d / "a-folder.png").mkdir(exist_ok=True)
    out["a-folder.png"] = (d / "a-folder.png", ())
    return out


def _lab_files(d: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    fhir_patient = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "name": [{"family": "QXZPHI", "given": ["TESTPERSON"]}],
                      "identifier": [{"value": "PHI-7731946"}], "birthDate": "1901-02-03"}},
        {"resource": {"resourceType": "Observation", "status": "final",
                      "subject": {"reference": "Patient/PHI-7731946", "display": "QXZPHI TESTPERSON"},
                      "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}], "text": "WBC"},
                      "valueQuantity": {"value": "lots", "unit": "10*3/uL"}}}]}
    def observations(n: int, value, code: str = "6690-2", pad: int = 0) -> str:
        obs = {"resource": {"resourceType": "Observation", "status": "final",
                            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "WBC" + " " * pad},
                            "valueQuantity": {"value": value, "unit": "10*3/uL"}}}
        return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [obs] * n})

    files = {
        "fhir-5000-digit-integer.json": '{"resourceType": "Observation", "code": {"text": "WBC"}, '
                                        '"valueQuantity": {"value": ' + "9" * 5000 + "}}",
        "fhir-warning-flood-5MB.json": observations(4999, "<5", pad=800),   # 4,999 censored values
        "fhir-error-flood.json": observations(4999, "lots"),              # 4,999 refused values
        "fhir-nan-infinity.json": '{"resourceType": "Observation", "code": {"text": "WBC"}, '
                                  '"valueQuantity": {"value": -Infinity}}',
        "latin1.csv": "sodium,wbc,rdw\n140,9,\xe9\n".encode("latin-1"),
        "non-numbers.csv": "sodium,wbc,creatinine\nabc,high,#N/A\n",
        "unconvertible-units.csv": "test,value,unit\nsodium,140,furlongs\nwbc,12,parsecs/L\n",
        "negative-absurd.csv": "sodium,creatinine,wbc,glucose\n-140,-5,1e9,99999999\n",
        "inf-nan.csv": "sodium,wbc,glucose\ninf,nan,1e400\n",
        "duplicate-tests.csv": "sodium,sodium,wbc\n140,120,9\n",
        "duplicate-long.csv": "test,value,unit\nsodium,140,mmol/L\nsodium,120,mmol/L\n",
        "wide-10000-columns.csv": ",".join(f"c{i}" for i in range(10_000)) + "\n"
                                  + ",".join("1" for _ in range(10_000)) + "\n",
        "non-fhir.json": json.dumps({"hello": [1, 2, {"world": None}]}),
        "json-array.json": json.dumps([1, 2, 3]),
        "deep-json.json": "[" * 100_000 + "]" * 100_000,
        "fhir-with-patient.json": json.dumps(fhir_patient),
        "formula-cells.csv": 'sodium,wbc,potassium\n=HYPERLINK("http://x"),+cmd|\' /C calc\'!A0,@SUM(1)\n',
        "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        "empty.csv": b"",
        "header-only.csv": "sodium,wbc\n",
        "utf16.csv": "sodium,wbc\n140,9\n".encode("utf-16"),
    }
    out = {}
    for name, data in files.items():
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        out[name] = (d / name, PHI_STRINGS if "patient" in name else ())
    with open(d / "big-50MB.csv", "wb") as fh:       # sparse: 50 MB on paper, nothing on disk
        fh.write(b"sodium,wbc\n140,9\n")
        fh.truncate(50 * 1024 * 1024)
    out["big-50MB.csv"] = (d / "big-50MB.csv", ())
    return out


def _manifest_paths(d: Path) -> dict[str, tuple[str, bool]]:
    """name -> (image_path as written in a manifest, must it be refused)."""
    root = d / "root"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    try:
        (root / "link-out.png").symlink_to("/etc/hostname")
        (root / "sub" / "dir-link").symlink_to(d)
    except OSError:
        pass
    out = {"dotdot-etc-passwd": "../../etc/passwd", "absolute-etc-hostname": "/etc/hostname",
           "symlink-out": "link-out.png", "symlinked-dir-out": "sub/dir-link/x.png",
           "sub-dotdot-out": "sub/../../x.png", "empty": "", "nul-byte": "a\x00b.png"}
    inside = {"very-long-inside": "a/" * 3000 + "x.png", "tilde-not-expanded": "~/.ssh/id_rsa",
              "dotdot-back-inside": "sub/../x.png"}   # odd but inside the root: may be accepted
    return {**{k: (v, True) for k, v in out.items()}, **{k: (v, False) for k, v in inside.items()}}


def _bundle_copies(src: Path, d: Path) -> dict[str, Path]:
    """Tampered copies of a bundle (the original is never touched)."""

    def copy(name: str) -> Path:
        dst = d / name
        shutil.copytree(src, dst)
        return dst

    out = {}
    b = out["truncated-weights"] = copy("truncated-weights")
    w = b / WEIGHTS_FILE
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    b = out["truncated-weights-rehashed"] = copy("truncated-weights-rehashed")
    w = b / WEIGHTS_FILE
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    meta = json.loads((b / "bundle.json").read_text())
    meta["weights"][WEIGHTS_FILE] = sha256_file(w)
    (b / "bundle.json").write_text(json.dumps(meta))
    b = out["digest-mismatch"] = copy("digest-mismatch")
    w = b / WEIGHTS_FILE
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    b = out["bundle-json-from-another-model"] = copy("bundle-json-from-another-model")
    meta = json.loads((b / "bundle.json").read_text())
    head = dict(meta["architecture"]["head"])
    head["fusion_units"] = int(head.get("fusion_units", 16)) * 2 + 8
    meta["architecture"]["head"] = head
    meta["name"] = "some-other-model"
    (b / "bundle.json").write_text(json.dumps(meta))
    b = out["bundle-json-not-json"] = copy("bundle-json-not-json")
    (b / "bundle.json").write_text("{not json")
    b = out["weights-missing"] = copy("weights-missing")
    (b / WEIGHTS_FILE).unlink()
    (d / "empty-folder").mkdir()
    out["empty-folder"] = d / "empty-folder"
    out["no-such-folder"] = d / "no-such-folder"
    return out


# ---- the corpus ----------------------------------------------------------------------------

def build_corpus(workdir: str | os.PathLike, *, predictor=None, panel=None,
                 bundle_dir: str | os.PathLike | None = None, kinds=KINDS) -> list[Probe]:
    """Write the hostile inputs under workdir and return one Probe per input."""

    work = Path(workdir)
    panel = panel or (predictor.panel if predictor is not None else default_panel())
    probes: list[Probe] = []
    if "image" in kinds:
        (work / "images").mkdir(parents=True, exist_ok=True)
        for name, (path, idents) in _image_files(work / "images").items():
            def run(path=path):     # the app/CLI path: read, then score when a model is loaded
                case = Case.from_sources(image=path, panel=panel, name=path.name)
                return predictor.predict(case) if predictor is not None else case.image.meta
            probes.append(Probe("image", name, run, idents))
    if "labs" in kinds:
        (work / "labs").mkdir(parents=True, exist_ok=True)
        for name, (path, idents) in _lab_files(work / "labs").items():
            def run(path=path):     # strict: the CLI's reading, where a refused value fails the case
                return Case.from_sources(labs=path, panel=panel, strict=True).labs
            probes.append(Probe("labs", name, run, idents))
            if predictor is not None:   # the app's reading: refused values become warnings, then scored
                def run_app(path=path):
                    return predictor.predict(Case.from_sources(labs=path, panel=panel))
                probes.append(Probe("labs", name + " (app)", run_app, idents))
    if "manifest" in kinds:
        (work / "manifest").mkdir(parents=True, exist_ok=True)
        root = work / "manifest" / "root"
        for name, (rel, refuse) in _manifest_paths(work / "manifest").items():
            probes.append(Probe("manifest", name, lambda rel=rel: resolve_inside(root, rel),
                                must_refuse=refuse))
    if "bundle" in kinds and bundle_dir is not None:
        (work / "bundles").mkdir(parents=True, exist_ok=True)
        for name, path in _bundle_copies(Path(bundle_dir), work / "bundles").items():
            probes.append(Probe("bundle", name, lambda path=path: Predictor.load(path), must_refuse=True))
    return probes


def _visible_text(value) -> str:
    """What a user could read from an accepted result (to search it for identifiers)."""
    if value is None:
        return ""
    for attr in ("to_dict", "__dict__"):
        got = getattr(value, attr, None)
        if got is not None:
            try:
                return json.dumps(got() if callable(got) else got, default=str)
            except (TypeError, ValueError):
                break
    return str(value)


def run_probe(probe: Probe) -> Outcome:
    start = time.perf_counter()
    shown = ""                    # everything the user would read: the message or the result
    try:
        value = probe.run()
    except PneumoError as err:
        shown = message = str(err)
        clean = bool(message.strip()) and "\n" not in message and "Traceback" not in message
        out = Outcome(probe.kind, probe.name, "handled" if clean else "unclear", type(err).__name__, message)
    except Exception as err:  # noqa: BLE001 - exactly what the corpus is here to find
        shown = str(err)
        out = Outcome(probe.kind, probe.name, "crashed", type(err).__name__, shown[:300])
    else:
        out = Outcome(probe.kind, probe.name, "escaped" if probe.must_refuse else "accepted")
        shown = _visible_text(value) if probe.identifiers else ""
    out.leaked = [i for i in probe.identifiers if i.lower() in shown.lower()]
    out.seconds = round(time.perf_counter() - start, 4)
    return out


def run_corpus(workdir: str | os.PathLike, *, predictor=None, bundle_dir=None, kinds=KINDS) -> list[Outcome]:
    """Build the corpus under workdir and run every probe."""
    return [run_probe(p) for p in build_corpus(workdir, predictor=predictor, bundle_dir=bundle_dir,
                                               kinds=kinds)]


def summarise(outcomes: list[Outcome]) -> dict:
    """Per kind: tried, accepted, handled, unclear, crashed, escaped, leaked."""
    table: dict[str, dict] = {}
    for o in outcomes:
        row = table.setdefault(o.kind, dict(tried=0, accepted=0, handled=0, unclear=0, crashed=0,
                                            escaped=0, leaked=0))
        row["tried"] += 1
        row[o.status] += 1
        row["leaked"] += bool(o.leaked)
    return table
