"""Predictor: a bundle + one case -> a calibrated Result, and on request its Explanation.

The image embedding is computed once per case and reused for the prediction, the modality
contribution, SHAP over the labs and what-if questions (the head is tiny; the backbone is not).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from pneumo import config, explain
from pneumo.errors import PneumoError, UnsupportedImageError
from pneumo.imaging import XRay, pixel_digest, preprocess, read_image
from pneumo.labs import LabReading, parse_labs
from pneumo.runner import ModelRunner
from pneumo.validity import Verdict, cheap_checks

NEAR_THRESHOLD = 0.10     # |p - threshold| below this reads "near threshold"


@dataclass
class Case:
    image: XRay | None = None
    labs: LabReading | None = None
    case_id: str | None = None

    @classmethod
    def from_sources(cls, image=None, labs=None, *, panel, name=None, strict=False) -> "Case":
        """Read an image (path/bytes/file) and labs (path/bytes/dict); typed errors on bad input.
        strict: a refused lab value raises LabError (the CLI); otherwise it becomes a warning
        and the test counts as not measured (the app shows the reason beside the form)."""
        xray = read_image(image, name=name) if image is not None else None
        reading = parse_labs(labs, panel) if labs is not None else None
        if strict and reading is not None:
            reading.raise_for_errors()
        return cls(xray, reading, name)


@dataclass
class Result:
    probability: float
    label: str
    threshold: float
    band: str
    modalities: dict
    modality_contribution: dict
    imputed: list = field(default_factory=list)
    out_of_range: list = field(default_factory=list)
    validity: str = "accept"
    warnings: list = field(default_factory=list)
    model: dict = field(default_factory=dict)
    image_digest: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Explanation:
    result: Result
    gradcam: np.ndarray | None
    overlay: np.ndarray | None
    shap_values: dict
    shap_base: float
    lab_display: list
    contribution: dict

    def to_dict(self) -> dict:
        return {"result": self.result.to_dict(), "shap_values": self.shap_values,
                "shap_base": self.shap_base, "lab_display": self.lab_display,
                "contribution": self.contribution,
                "gradcam_shape": None if self.gradcam is None else list(self.gradcam.shape)}


class Predictor:
    def __init__(self, runner: ModelRunner):
        self.runner = runner
        self.bundle = runner.bundle
        self.panel = runner.panel
        self.threshold = float(runner.threshold)
        self.name, self.version = runner.name, runner.version
        self.meta, self.metrics = runner.meta, runner.metrics
        self._embeddings: OrderedDict[str, tuple] = OrderedDict()   # digest -> (input, early, late)

    @classmethod
    def load(cls, bundle_dir=None) -> "Predictor":
        return cls(ModelRunner.load(bundle_dir or config.default_model_dir()))

    # --- the per-case pieces ------------------------------------------------------------
    def _image_state(self, case: Case):
        """(model input, early, late, digest, verdict) for the case's image; cached by digest."""
        if case.image is None:
            return None, None, None, None, Verdict()
        digest = pixel_digest(case.image.pixels)
        if digest not in self._embeddings:
            x = preprocess(case.image.pixels, self.runner.image_size)
            early, late = self.runner.embed(x[None])
            self._embeddings[digest] = (x, early, late)
            while len(self._embeddings) > 16:
                self._embeddings.popitem(last=False)
        x, early, late = self._embeddings[digest]
        verdict = cheap_checks(case.image.pixels, case.image.meta, x)
        if self.runner.gate is not None:
            self.runner.gate.judge(late, verdict)
        return x, early, late, digest, verdict

    def _lab_row(self, case: Case) -> np.ndarray:
        """The case's labs as one row in panel order, NaN = missing."""
        row = np.full((1, len(self.panel)), np.nan, dtype=np.float32)
        if case.labs is not None:
            for j, key in enumerate(self.panel.keys):
                value = case.labs.values.get(key)
                if value is not None:
                    row[0, j] = value
        return row

    def _four_corners(self, early, late, labs_row) -> np.ndarray:
        """P for {neither, image only, labs only, both}: one batched head call."""
        n = len(self.panel)
        empty = np.full((1, n), np.nan, dtype=np.float32)
        if early is None:
            early = np.zeros((1, self.runner.early_dim), np.float32)
            late = np.zeros((1, self.runner.late_dim), np.float32)
        e = np.repeat(early, 4, axis=0)
        l = np.repeat(late, 4, axis=0)
        present = np.array([0, 1, 0, 1], np.float32)
        labs = np.concatenate([empty, empty, labs_row, labs_row])
        return self.runner.head(e, l, present, labs)

    def predict(self, case: Case) -> Result:
        if case.image is None and case.labs is None:
            raise PneumoError("a case needs an image, labs or both")
        x, early, late, digest, verdict = self._image_state(case)
        if verdict.outcome == "refuse":
            raise UnsupportedImageError("image refused: " + "; ".join(
                r for r in verdict.reasons))
        labs_row = self._lab_row(case)
        has_labs = bool(np.isfinite(labs_row).any())
        v_none, v_img, v_labs, v_both = self._four_corners(early, late, labs_row)
        has_image = early is not None
        p = float({(True, True): v_both, (True, False): v_img,
                   (False, True): v_labs, (False, False): v_none}[(has_image, has_labs)])
        contribution = explain.modality_shapley(v_none, v_img if has_image else v_none,
                                                v_labs if has_labs else v_none, p)
        warnings = list(verdict.reasons)
        reading = case.labs
        imputed = list(reading.missing) if reading is not None else list(self.panel.keys)
        if reading is not None:
            warnings += [f"{i.key}: {i.reason}" for i in reading.errors]
            warnings += [f"{i.key}: {i.reason}" for i in reading.warnings]
        if not has_image:
            warnings.append("no image: the answer rests on the labs alone")
        if not has_labs:
            warnings.append("no lab values: the answer rests on the image alone")
        elif imputed:
            warnings.append(f"{len(imputed)} of {len(self.panel)} lab tests missing "
                            "(the model treats them as not measured)")
        band = "near threshold" if abs(p - self.threshold) < NEAR_THRESHOLD else "clear"
        return Result(
            probability=round(p, 6),
            label="PNEUMONIA" if p >= self.threshold else "NORMAL",
            threshold=self.threshold, band=band,
            modalities={"image": has_image, "labs": has_labs},
            modality_contribution={"image": round(contribution["image"], 6),
                                   "labs": round(contribution["labs"], 6)},
            imputed=imputed,
            out_of_range=list(reading.out_of_range) if reading is not None else [],
            validity=verdict.outcome, warnings=warnings, model=self.runner.model_info(),
            image_digest=digest)

    def predict_many(self, cases: list[Case]) -> list[Result | PneumoError]:
        """Batch path: one backbone call for all images, then the per-case head calls."""
        todo = [c for c in cases if c.image is not None]
        if todo:
            xs = np.stack([preprocess(c.image.pixels, self.runner.image_size) for c in todo])
            early, late = self.runner.embed(xs)
            for i, c in enumerate(todo):
                self._embeddings[pixel_digest(c.image.pixels)] = (xs[i], early[i:i + 1],
                                                                  late[i:i + 1])
            while len(self._embeddings) > max(16, len(todo)):
                self._embeddings.popitem(last=False)
        out = []
        for case in cases:
            try:
                out.append(self.predict(case))
            except PneumoError as err:
                out.append(err)
        return out

    def what_if(self, case: Case, changes: dict) -> float:
        """P for the same case with some lab values replaced (None = not measured)."""
        _, early, late, _, _ = self._image_state(case)
        row = self._lab_row(case)
        for key, value in changes.items():
            row[0, self.panel.keys.index(key)] = np.nan if value is None else float(value)
        present = np.array([0.0 if early is None else 1.0], np.float32)
        if early is None:
            early = np.zeros((1, self.runner.early_dim), np.float32)
            late = np.zeros((1, self.runner.late_dim), np.float32)
        return float(self.runner.head(early, late, present, row)[0])

    def explain(self, case: Case, *, shap: bool = True, gradcam: bool = True) -> Explanation:
        result = self.predict(case)
        x, early, late, _, _ = self._image_state(case)
        heat = over = None
        if gradcam and x is not None:
            coarse = self.runner.grad_cam(x, self._lab_row(case))
            h, w = case.image.pixels.shape
            heat = explain.upsample_heat(coarse, h, w)
            over = explain.overlay(case.image.pixels, heat)
        labs_row = self._lab_row(case)
        shap_values, shap_base = {}, result.probability
        if shap and result.modalities["labs"]:
            present = np.array([0.0 if early is None else 1.0], np.float32)
            e = early if early is not None else np.zeros((1, self.runner.early_dim), np.float32)
            l = late if late is not None else np.zeros((1, self.runner.late_dim), np.float32)

            def f(matrix):
                n = len(matrix)
                return self.runner.head(np.repeat(e, n, 0), np.repeat(l, n, 0),
                                        np.repeat(present, n), matrix.astype(np.float32))

            values, shap_base = explain.lab_shap(f, labs_row[0], self.runner.background)
            shap_values = {k: float(v) for k, v in zip(self.panel.keys, values)}
        return Explanation(result, heat, over, shap_values, float(shap_base),
                           self.lab_display(case), dict(result.modality_contribution))

    def lab_display(self, case: Case) -> list[dict]:
        rows = []
        values = case.labs.values if case.labs is not None else {}
        out = set(case.labs.out_of_range) if case.labs is not None else set()
        for test in self.panel:
            value = values.get(test.key)
            rows.append({"key": test.key, "name": test.name, "unit": test.unit,
                         "value": value, "ref_low": test.ref_low, "ref_high": test.ref_high,
                         "imputed": value is None, "out_of_range": test.key in out})
        return rows
