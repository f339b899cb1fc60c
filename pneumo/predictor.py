"""Predictor: a bundle + one case -> a calibrated Result, and on request its Explanation.

The image embedding is computed once per case and reused for the prediction, the modality
contribution, SHAP over the labs and what-if questions (the head is tiny; the backbone is not).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from pneumo import config, explain
from pneumo.errors import PneumoError, UnsupportedImageError
from pneumo.imaging import XRay, pixel_digest, preprocess, read_image
from pneumo.labs import LabReading, parse_labs
from pneumo.bundle import view_of
from pneumo.runner import ModelRunner
from pneumo.validity import Verdict, cheap_checks

NEAR_THRESHOLD = 0.10     # |p - threshold| below this reads "near threshold"
SHAP_BACKGROUND = 50      # training panels SHAP integrates over (a random subset): ~0.8 s a case


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
        self._lock = threading.Lock()   # one Predictor serves every app session: guard the cache

    @classmethod
    def load(cls, bundle_dir=None) -> "Predictor":
        return cls(ModelRunner.load(bundle_dir or config.default_model_dir()))

    def warm_up(self) -> None:
        """For long-lived processes: trace the model calls before the first real case."""
        self.runner.warm_up()

    # --- the per-case pieces ------------------------------------------------------------
    def _image_states(self, cases: list[Case]) -> list[tuple]:
        """(model input, early, late, digest, verdict) per case; one backbone call for all
        images not seen recently (the embedding cache is keyed by the pixel digest)."""
        digests = [pixel_digest(c.image.pixels) if c.image is not None else None for c in cases]
        by_digest = {d: c for d, c in zip(digests, cases) if d is not None}
        found: dict = {}
        with self._lock:
            for d in by_digest:
                if d not in found and d in self._embeddings:
                    found[d] = self._embeddings[d]
                    self._embeddings.move_to_end(d)
        todo = [d for d in by_digest if d not in found]
        if todo:   # the backbone runs outside the lock; a film two sessions embed at once is embedded twice
            xs = np.stack([preprocess(by_digest[d].image.pixels, self.runner.image_size) for d in todo])
            early, late = self.runner.embed(xs)
            with self._lock:
                for i, d in enumerate(todo):
                    found[d] = self._embeddings[d] = (xs[i], early[i:i + 1], late[i:i + 1])
                while len(self._embeddings) > max(16, len(todo)):
                    self._embeddings.popitem(last=False)
        states = []
        for case, digest in zip(cases, digests):
            if digest is None:
                states.append((None, None, None, None, Verdict()))
                continue
            x, early, late = found[digest]
            verdict = self.runner.judge(early, late, cheap_checks(case.image.pixels,
                                                                  case.image.meta, x))
            states.append((x, early, late, digest, verdict))
        return states

    def _image_state(self, case: Case) -> tuple:
        return self._image_states([case])[0]

    def _lab_row(self, case: Case) -> np.ndarray:
        """The case's labs as one row in panel order, NaN = missing."""
        row = np.full((1, len(self.panel)), np.nan, dtype=np.float32)
        if case.labs is not None:
            for j, key in enumerate(self.panel.keys):
                value = case.labs.values.get(key)
                if value is not None:
                    row[0, j] = value
        return row

    def _embeddings_or_zeros(self, early, late):
        if early is None:
            return (np.zeros((1, self.runner.early_dim), np.float32),
                    np.zeros((1, self.runner.late_dim), np.float32))
        return early, late

    def predict(self, case: Case) -> Result:
        """Raises UnsupportedImageError when the image is refused, PneumoError when empty."""
        return self._scored(case, self._image_state(case))

    def _scored(self, case: Case, state: tuple) -> Result:
        result = self._score([case], [state])[0]
        if isinstance(result, PneumoError):
            raise result
        return result

    def predict_many(self, cases: list[Case]) -> list[Result | PneumoError]:
        """Batch path: one backbone call for the new images and ONE head call for the four
        modality corners {neither, image, labs, both} of every case. A case that cannot be
        scored gets its error in its place; the others are still scored."""
        return self._score(cases, self._image_states(cases))

    def _score(self, cases: list[Case], states: list[tuple]) -> list[Result | PneumoError]:
        out: list = [None] * len(cases)
        rows = []   # (case index, early, late, labs row)
        for i, (case, state) in enumerate(zip(cases, states)):
            if case.image is None and case.labs is None:
                out[i] = PneumoError("a case needs an image, labs or both")
            elif state[4].outcome == "refuse":
                out[i] = UnsupportedImageError("image refused: " + "; ".join(state[4].refusals))
            else:
                rows.append((i, *self._embeddings_or_zeros(state[1], state[2]),
                             self._lab_row(case)))
        if rows:
            empty = np.full((1, len(self.panel)), np.nan, np.float32)
            early = np.concatenate([np.repeat(r[1], 4, axis=0) for r in rows])
            late = np.concatenate([np.repeat(r[2], 4, axis=0) for r in rows])
            present = np.tile(np.array([0, 1, 0, 1], np.float32), len(rows))
            labs = np.concatenate([np.concatenate([empty, empty, r[3], r[3]]) for r in rows])
            corners = self.runner.head(early, late, present, labs).reshape(len(rows), 4)
            for (i, *_), v in zip(rows, corners):
                out[i] = self._result(cases[i], states[i], v)
        return out

    def _result(self, case: Case, state: tuple, corners: np.ndarray) -> Result:
        """Assemble the Result from the four corner probabilities of one case."""
        _, early, _, digest, verdict = state
        v_none, v_img, v_labs, v_both = (float(v) for v in corners)
        has_image = early is not None
        reading = case.labs
        has_labs = reading is not None and any(v is not None for v in reading.values.values())
        p = {(True, True): v_both, (True, False): v_img,
             (False, True): v_labs, (False, False): v_none}[(has_image, has_labs)]
        threshold = self.runner.threshold_for(str(view_of(has_image, has_labs)))
        contribution = explain.modality_shapley(v_none, v_img if has_image else v_none,
                                                v_labs if has_labs else v_none, p)
        warnings = list(verdict.reasons)
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
        band = "near threshold" if abs(p - threshold) < NEAR_THRESHOLD else "clear"
        return Result(
            probability=round(p, 6),
            label="PNEUMONIA" if p >= threshold else "NORMAL",
            threshold=threshold, band=band,
            modalities={"image": has_image, "labs": has_labs},
            modality_contribution={"image": round(contribution["image"], 6),
                                   "labs": round(contribution["labs"], 6)},
            imputed=imputed,
            out_of_range=list(reading.out_of_range) if reading is not None else [],
            validity=verdict.outcome, warnings=warnings, model=self.runner.model_info(),
            image_digest=digest)

    def what_if(self, case: Case, changes: dict) -> float:
        """P for the same case with some lab values replaced (None = not measured)."""
        _, early, late, _, _ = self._image_state(case)
        row = self._lab_row(case)
        for key, value in changes.items():
            row[0, self.panel.keys.index(key)] = np.nan if value is None else float(value)
        present = np.array([0.0 if early is None else 1.0], np.float32)
        early, late = self._embeddings_or_zeros(early, late)
        return float(self.runner.head(early, late, present, row)[0])

    def explain(self, case: Case, *, shap: bool = True, gradcam: bool = True) -> Explanation:
        state = self._image_state(case)          # one digest, one set of checks per case
        result = self._scored(case, state)
        x, early, late = state[:3]
        labs_row = self._lab_row(case)
        heat = over = None
        if gradcam and x is not None:
            coarse = self.runner.grad_cam(x, labs_row)
            h, w = case.image.pixels.shape
            heat = explain.upsample_heat(coarse, h, w)
            over = explain.overlay(case.image.pixels, heat)
        shap_values, shap_base = {}, result.probability
        if shap and result.modalities["labs"]:
            e, l = self._embeddings_or_zeros(early, late)

            def f(matrix):
                return self.runner.head_for_one_image(e, l, 0.0 if early is None else 1.0, matrix)

            values, shap_base = explain.lab_shap(f, labs_row[0],
                                                 self.runner.background[:SHAP_BACKGROUND])
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
