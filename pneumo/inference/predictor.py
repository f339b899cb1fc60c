"""Predictor: a bundle + one case -> a calibrated Result, and on request its Explanation.

The image embedding is computed once per case and reused for the prediction, the modality
contribution, SHAP over the labs and what-if questions (the head is tiny; the backbone is not).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from pneumo import config
from pneumo.data.imaging import pixel_digest, preprocess
from pneumo.data.labs.healthy import healthy_row
from pneumo.data.labs.parse import display_rows
from pneumo.errors import NothingToReadError, PneumoError, UnsupportedImageError
from pneumo.explain import attribution as explain
from pneumo.explain.shapley import shapley_vs_reference
from pneumo.inference.case import Case, Explanation, ImageState, Result
from pneumo.inference.decision_rule import band_of, label_of
from pneumo.inference.disclosure import as_asked, shown
from pneumo.inference.intended_use import OUTSIDE, IntendedUse, assess
from pneumo.inference.lite_runner import load_runner
from pneumo.inference.reference_set import gate_features
from pneumo.inference.runner_base import RunnerBase
from pneumo.inference.validity import cheap_checks
from pneumo.models.bundle import view_of

EXPLAIN_MAX_SIDE = 2048   # Grad-CAM maps at the film's resolution, up to this long side

__all__ = ["Case", "Explanation", "ImageState", "Predictor", "Result"]


class Predictor:
    def __init__(self, runner: RunnerBase):
        self.runner = runner
        self.bundle = runner.bundle
        self.panel = runner.panel
        self.threshold = float(runner.threshold)
        self.name, self.version = runner.name, runner.version
        self.meta, self.metrics = runner.meta, runner.metrics
        self.population, self.film_check = runner.population, runner.film_check
        self._labs_only_figures = _view_figures((self.metrics.get("test") or {}).get("labs_only"))
        self._embeddings: OrderedDict[str, tuple] = OrderedDict()   # digest -> (input, early, late, trunk or None)
        self._lock = threading.Lock()   # one Predictor serves every app session: guard the cache

    @classmethod
    def load(cls, bundle_dir=None) -> "Predictor":
        """The bundle's exported LiteRT runtime, Grad-CAM included (no TensorFlow; only an export
        made before the cam graph loads Keras for Grad-CAM), or the Keras path for a bundle without one."""
        return cls(load_runner(bundle_dir or config.default_model_dir()))

    def warm_up(self, explain: bool = True) -> None:
        """For long-lived processes: prepare the model calls before the first real case; with
        `explain`, Grad-CAM's too (the exported cam graph; Keras only for an export without one)."""
        self.runner.warm_up(explain=explain)

    # --- the per-case pieces ------------------------------------------------------------
    def _image_states(self, cases: list[Case]) -> list[ImageState]:
        """One ImageState per case; one backbone call for all images not seen recently (the
        embedding cache is keyed by the pixel digest)."""
        digests = [pixel_digest(c.image.pixels) if c.image is not None else None for c in cases]
        by_digest = {d: c for d, c in zip(digests, cases) if d is not None}
        found: dict = {}
        with self._lock:
            for d in by_digest:
                if d in self._embeddings:
                    found[d] = self._embeddings[d]
                    self._embeddings.move_to_end(d)
        todo = [d for d in by_digest if d not in found]
        if todo:   # the backbone runs outside the lock; a film two sessions embed at once is embedded twice
            xs = np.stack([preprocess(by_digest[d].image.pixels, self.runner.image_size) for d in todo])
            early, late, trunk = self.runner.embed_with_trunk(xs)
            with self._lock:
                for i, d in enumerate(todo):
                    found[d] = self._embeddings[d] = (xs[i], early[i:i + 1], late[i:i + 1],
                                                      None if trunk is None else trunk[i:i + 1])
                while len(self._embeddings) > max(16, len(todo)):
                    self._embeddings.popitem(last=False)
        states = []
        for case, digest in zip(cases, digests):
            if digest is None:
                states.append(ImageState())
                continue
            x, early, late, trunk = found[digest]
            verdict = self.runner.judge(early, late, cheap_checks(case.image.pixels, case.image.meta, x))
            film = (self.film_check.read(gate_features(early, late), x, trunk)
                    if self.film_check is not None else None)
            states.append(ImageState(x, early, late, digest, verdict, film))
        return states

    def _image_state(self, case: Case) -> ImageState:
        return self._image_states([case])[0]

    def _lab_row(self, case: Case) -> np.ndarray:
        """The case's labs as one row in panel order, NaN = missing."""
        if case.labs is None:
            return np.full((1, len(self.panel)), np.nan, dtype=np.float32)
        return case.labs.row(self.panel)[None]

    def _embeddings_or_zeros(self, early, late):
        if early is None:
            return (np.zeros((1, self.runner.early_dim), np.float32),
                    np.zeros((1, self.runner.late_dim), np.float32))
        return early, late

    def intended_use(self, case: Case, state: ImageState | None = None) -> IntendedUse:
        """Is this case one the model was validated for (see pneumo.inference.intended_use)?"""
        state = state if state is not None else self._image_state(case)
        meta = case.image.meta if case.image is not None else None
        return assess(self.population, has_image=case.image is not None,
                      header_age=getattr(meta, "age_years", None), given_age=case.age_years,
                      view_position=getattr(meta, "view_position", None), film=state.film,
                      modality=getattr(meta, "modality", None),
                      header_age_bounds=getattr(meta, "age_bounds", None),
                      header_age_source=getattr(meta, "age_source", None))

    def predict(self, case: Case, *, allow_outside: bool = False) -> Result:
        """Raises UnsupportedImageError when the image is refused, NothingToReadError when the
        case has neither a film nor a usable lab value. Outside the intended use the label is left
        empty (the probability is still in the Result; what each surface shows of it is
        pneumo.inference.disclosure's) unless allow_outside: the user asked for this case."""
        return self._scored(case, self._image_state(case), allow_outside)

    def _scored(self, case: Case, state: ImageState, allow_outside: bool) -> Result:
        result = self._score([case], [state], allow_outside)[0]
        if isinstance(result, PneumoError):
            raise result
        return result

    def predict_many(self, cases: list[Case], *, allow_outside: bool = False) -> list[Result | PneumoError]:
        """Batch path: one backbone call for the new images and ONE head call for the four
        modality corners {neither, image, labs, both} of every case (plus each member's answer).
        A case that cannot be scored gets its error in its place; the others are still scored."""
        return self._score(cases, self._image_states(cases), allow_outside)

    def _score(self, cases: list[Case], states: list[ImageState], allow_outside: bool) -> list:
        out: list = [None] * len(cases)
        rows = []   # (case index, early, late, labs row)
        for i, (case, state) in enumerate(zip(cases, states)):
            if case.image is None and not case.has_labs:
                out[i] = NothingToReadError(
                    "nothing to read: no film and no usable lab value" +
                    (f" ({len(case.labs.unknown)} unrecognised columns)"   # a count: a header cell may be a name
                     if case.labs is not None and case.labs.unknown else ""))
            elif state.verdict.outcome == "refuse":
                out[i] = UnsupportedImageError("image refused: " + "; ".join(state.verdict.refusals))
            else:
                rows.append((i, *self._embeddings_or_zeros(state.early, state.late), self._lab_row(case)))
        if rows:
            empty = np.full((1, len(self.panel)), np.nan, np.float32)
            early = np.concatenate([np.repeat(r[1], 4, axis=0) for r in rows])
            late = np.concatenate([np.repeat(r[2], 4, axis=0) for r in rows])
            present = np.tile(np.array([0, 1, 0, 1], np.float32), len(rows))
            labs = np.concatenate([np.concatenate([empty, empty, r[3], r[3]]) for r in rows])
            corners, members = self.runner.head_and_members(early, late, present, labs)
            corners = corners.reshape(len(rows), 4)
            # each member's answer for the view the case is read in (the row it has)
            own = [2 * bool(cases[i].has_labs) + (cases[i].image is not None) for i, *_ in rows]
            members = members[:, [4 * k + c for k, c in enumerate(own)]]
            for k, ((i, *_), v) in enumerate(zip(rows, corners)):
                out[i] = self._result(cases[i], states[i], v, members[:, k], allow_outside)
        return out

    def _result(self, case: Case, state: ImageState, corners: np.ndarray, members: np.ndarray,
                allow_outside: bool) -> Result:
        """Assemble the Result from the four corner probabilities of one case."""
        v_none, v_img, v_labs, v_both = (float(v) for v in corners)
        has_image, has_labs = state.early is not None, case.has_labs
        reading = case.labs
        p = {(True, True): v_both, (True, False): v_img,
             (False, True): v_labs, (False, False): v_none}[(has_image, has_labs)]
        view = str(view_of(has_image, has_labs))
        threshold = self.threshold      # one rule for every view (pneumo.inference.decision_rule)
        # film first, then the labs, the order a clinician reads them: the lab bars split the second step
        image_step = (v_img - v_none) if has_image else 0.0
        labs_step = (p - (v_img if has_image else v_none)) if has_labs else 0.0
        warnings = list(state.verdict.reasons)
        notes = []
        imputed = list(reading.missing) if reading is not None else list(self.panel.keys)
        if reading is not None:
            warnings += [f"{i.key}: {i.reason}" for i in reading.errors]
            warnings += [f"{i.key}: {i.reason}" for i in reading.warnings]
        use = self.intended_use(case, state)
        if use.status == OUTSIDE:
            warnings.insert(0, "outside the intended use: " + use.reason)
        if not has_image:
            notes.append("no film: the answer rests on the labs alone" + self._labs_only_figures)
        if not has_labs:
            notes.append("no lab values: the answer rests on the film alone")
        elif imputed:
            notes.append(f"{len(imputed)} of {len(self.panel)} lab tests not given "
                         "(the model treats them as not measured)")
        uncertainty = _uncertainty(p, threshold, members)
        band = band_of(p, threshold, has_warning=bool(warnings), members_agree=uncertainty["agree"])
        return as_asked(Result(
            probability=round(p, 6),
            label=label_of(p, threshold),
            threshold=threshold, band=band,
            modalities={"image": has_image, "labs": has_labs},
            modality_contribution={"image": round(image_step, 6), "labs": round(labs_step, 6)},
            imputed=imputed,
            out_of_range=list(reading.out_of_range) if reading is not None else [],
            validity=state.verdict.outcome, warnings=warnings, model=self.runner.model_info(),
            image_digest=state.digest, intended_use=use.status, intended_use_reason=use.reason,
            notes=notes, uncertainty=uncertainty, baseline=round(v_none, 6), view=view), allow_outside)

    def what_if(self, case: Case, changes: dict) -> dict:
        """The same case with some lab values replaced (None = not measured): its probability
        and the label and threshold the rule would give it."""
        state = self._image_state(case)
        row = self._lab_row(case)
        for key, value in changes.items():
            row[0, self.panel.keys.index(key)] = np.nan if value is None else float(value)
        present = np.array([0.0 if state.early is None else 1.0], np.float32)
        early, late = self._embeddings_or_zeros(state.early, state.late)
        p = float(self.runner.head(early, late, present, row)[0])
        view = str(view_of(state.early is not None, bool(np.isfinite(row).any())))
        return {"probability": p, "label": label_of(p, self.threshold), "threshold": self.threshold, "view": view}

    def explain(self, case: Case, *, shap: bool = True, gradcam: bool = True,
                allow_outside: bool = False) -> Explanation:
        state = self._image_state(case)          # one digest, one set of checks per case
        result = self._scored(case, state, allow_outside)
        labs_row = self._lab_row(case)
        heat = over = None
        show = shown(result)       # outside the intended use and not asked: no heat map, no lab bars
        if gradcam and show.gradcam and state.x is not None:
            coarse = self.runner.grad_cam(state.x, labs_row)
            film = explain.shrink_to(case.image.pixels, EXPLAIN_MAX_SIDE)   # a 49 MP film: not 2 GB of maps
            heat = explain.upsample_heat(coarse, *film.shape)
            over = explain.overlay(film, heat)
        effects = {}
        if shap and show.probability is not None and result.modalities["labs"]:
            effects = self._lab_effects(state, labs_row[0], case.age)
        return Explanation(result, heat, over, effects.get("values", {}), effects.get("base", result.probability),
                           self.lab_display(case), dict(result.modality_contribution),
                           lab_reference=effects.get("reference", {}), back_to_normal=effects.get("back", {}),
                           shap_noise=effects.get("noise", {}))

    def _lab_effects(self, state: ImageState, row: np.ndarray, age: float | None) -> dict:
        """Shapley values of the measured tests against the same tests at healthy values (the film
        and the tests not measured as they are), and what moving each test back to healthy does."""
        e, l = self._embeddings_or_zeros(state.early, state.late)
        present = 0.0 if state.early is None else 1.0
        reference = healthy_row(self.panel, row, age)
        s = shapley_vs_reference(lambda m: self.runner.head_for_one_image(e, l, present, m), row, reference)
        given = [(i, k) for i, k in enumerate(self.panel.keys) if np.isfinite(row[i])]
        return {"values": {k: float(s.values[i]) for i, k in given}, "base": float(s.base),
                "reference": {k: float(reference[i]) for i, k in given},
                "back": {k: float(s.back_to_reference[i]) for i, k in given},
                "noise": {k: float(s.error[i]) for i, k in given}}

    def lab_display(self, case: Case) -> list[dict]:
        return display_rows(case.labs, self.panel)


def _view_figures(m: dict | None) -> str:
    """' (labs-only cases on the test split: ROC AUC 0.64, sensitivity 0.33, specificity 0.90)'."""
    if not m or not all(isinstance(m.get(k), (int, float)) for k in ("roc_auc", "sensitivity", "specificity")):
        return ""
    return (f" (labs-only cases on the test split: ROC AUC {m['roc_auc']:.2f}, sensitivity "
            f"{m['sensitivity']:.2f}, specificity {m['specificity']:.2f}: weak on their own)")


def _uncertainty(p: float, threshold: float, members: np.ndarray) -> dict:
    """What the ensemble's own spread says, in numbers and in words."""
    members = [round(float(m), 6) for m in np.ravel(members)]
    sides = {label_of(m, threshold) for m in members}
    agree = len(sides) <= 1
    spread = (max(members) - min(members)) if members else 0.0
    if len(members) < 2:
        words = "a single model: no spread to measure"
    elif agree:
        words = (f"the {len(members)} members of the ensemble agree: each gives "
                 f"{min(members):.2f}-{max(members):.2f}, all on the same side of the threshold")
    else:
        words = (f"the {len(members)} members of the ensemble disagree: they give "
                 f"{min(members):.2f}-{max(members):.2f}, on both sides of the threshold "
                 f"{threshold:.2f}; treat this answer as uncertain")
    return {"members": members, "spread": round(spread, 6), "agree": agree, "words": words}
