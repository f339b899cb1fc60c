"""One case and its answer, as plain data (no TensorFlow): what goes into the Predictor (Case),
what the model made of the film (ImageState), and what comes out (Result, Explanation).
Test fakes and the app's pages use these same classes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from pneumo.data.imaging import XRay, read_image
from pneumo.data.labs import LabReading, parse_labs
from pneumo.inference.decision_rule import RULE, label_of
from pneumo.inference.intended_use import FilmReading, parse_age
from pneumo.inference.validity import Verdict


@dataclass
class Case:
    image: XRay | None = None
    labs: LabReading | None = None
    case_id: str | None = None
    age_years: float | None = None    # given by the user; the DICOM header's own age wins

    @classmethod
    def from_sources(cls, image=None, labs=None, *, panel, name=None, strict=False,
                     age=None) -> "Case":
        """Read an image (path/bytes/file) and labs (path/bytes/dict); typed errors on bad input.
        strict: a refused lab value raises LabError (the CLI); otherwise it becomes a warning
        and the test counts as not measured (the app shows the reason beside the form).
        age: the patient's age in years, if the user knows it (checked, never shown)."""
        xray = read_image(image, name=name) if image is not None else None
        reading = parse_labs(labs, panel) if labs is not None else None
        if strict and reading is not None:
            reading.raise_for_errors()
        return cls(xray, reading, name, parse_age(age))

    @property
    def age(self) -> float | None:
        """The patient's age as the case knows it: the DICOM header's, else the one given."""
        header = getattr(getattr(self.image, "meta", None), "age_years", None)
        return header if header is not None else self.age_years

    @property
    def has_labs(self) -> bool:
        """At least one usable lab value (a file of unrecognised columns has none)."""
        return self.labs is not None and any(v is not None for v in self.labs.values.values())


@dataclass(frozen=True)
class ImageState:
    """What the model made of one case's film: computed once, reused by every question."""
    x: np.ndarray | None = None          # the (S, S, 1) model input
    early: np.ndarray | None = None      # (1, D) embeddings
    late: np.ndarray | None = None
    digest: str | None = None
    verdict: Verdict = field(default_factory=Verdict)
    film: FilmReading | None = None      # the learned intended-use check


@dataclass
class Result:
    probability: float
    label: str                  # PNEUMONIA | NORMAL; "" outside the intended use unless allowed
    threshold: float
    band: str                   # clear | near threshold | members disagree | caution
    modalities: dict
    modality_contribution: dict  # film first, then labs: baseline + image + labs = probability
    imputed: list = field(default_factory=list)
    out_of_range: list = field(default_factory=list)
    validity: str = "accept"
    warnings: list = field(default_factory=list)   # reasons to doubt this answer
    model: dict = field(default_factory=dict)
    image_digest: str | None = None
    intended_use: str = "unknown"                   # within | outside | unknown
    intended_use_reason: str = ""
    notes: list = field(default_factory=list)       # what the answer rests on (not doubts)
    uncertainty: dict = field(default_factory=dict)
    baseline: float | None = None                   # P with neither film nor labs
    view: str = "fusion"                            # fusion | image_only | labs_only
    decision_rule: str = RULE
    outside_allowed: bool = False   # outside the intended use, and the user asked to see it anyway

    @property
    def suggested_label(self) -> str:
        """The label the rule gives, shown or not (what a surface shows: pneumo.inference.disclosure)."""
        return label_of(self.probability, self.threshold)

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
    # the lab bars' reference: each measured test at a healthy value (pneumo.data.labs.healthy);
    # shap_base is the answer with these values, and back_to_normal[k] = P - P(k set to healthy)
    lab_reference: dict = field(default_factory=dict)
    back_to_normal: dict = field(default_factory=dict)
    shap_noise: dict = field(default_factory=dict)      # sampling standard error (0 when exact)

    def to_dict(self) -> dict:
        return {"result": self.result.to_dict(), "shap_values": self.shap_values,
                "shap_base": self.shap_base, "shap_reference": self.lab_reference,
                "back_to_normal": self.back_to_normal, "lab_display": self.lab_display,
                "contribution": self.contribution,
                "gradcam_shape": None if self.gradcam is None else list(self.gradcam.shape)}
