"""Intended use: was the model validated for this case at all?

The bundle states its population in bundle.json["intended_use"] (ages, views, film kinds).
Each case is judged against it from the strongest evidence there is:
  1. the DICOM header: the patient's age (PatientAge, or birth date vs study date), ViewPosition
     (pneumo.data.dicom_terms) and Modality (against the film kinds);
  2. an age the user gives (the form, `--age`, a manifest's `age` column);
  3. a learned check on the film itself (`FilmCheck`): adult vs child on the image embedding,
     on the film's shape (pneumo.inference.film_features), or either of the two saying adult;
     how unlike the training children the film is in each (`Unfamiliarity`: fitted on children
     only, so it owes nothing to the adult sources at hand); frontal vs lateral on the film's
     left-right symmetry;
and says `within`, `outside` or `unknown`, with the reason in words. An age is used only as an
age: no reason quotes it, so it cannot reach a screen, a log or a report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumo.data.dicom_terms import FRONTAL_VIEWS, NOT_FRONTAL_VIEWS, film_kind
from pneumo.inference.film_features import FEATURES as FILM_FEATURES
from pneumo.inference.film_features import TRUNK_FILE, TRUNK_KINDS, FilmTrunk, film_features
from pneumo.errors import PneumoError

WITHIN, OUTSIDE, UNKNOWN = "within", "outside", "unknown"
EMBEDDING, SHAPE, BOTH = "embedding", "shape", "both"
INPUTS = (EMBEDDING, SHAPE, BOTH)   # what the adult check reads: the image embedding, the film's shape, or both
FILM_CHECK_FILE = "intended_use.npz"
MAX_AGE = 130             # an age above this is a typing error, not a patient


def parse_age(age) -> float | None:
    """An age in years from a form, a flag or a manifest cell; None when blank."""
    if age is None or isinstance(age, str) and not age.strip():
        return None
    try:
        value = float(age)
    except (TypeError, ValueError):
        raise PneumoError("the age must be a number of years") from None
    if not 0 <= value <= MAX_AGE:
        raise PneumoError(f"the age must be between 0 and {MAX_AGE} years")
    return value


@dataclass(frozen=True)
class Population:
    """Who and what the model was validated on; ages in whole years, both ends included."""
    age_min: int
    age_max: int
    views: tuple[str, ...]
    film_kinds: tuple[str, ...]
    description: str

    @classmethod
    def from_meta(cls, meta: dict) -> "Population | None":
        raw = meta.get("intended_use")
        if not isinstance(raw, dict):
            return None
        return cls(int(raw["age_min"]), int(raw["age_max"]), tuple(raw["views"]),
                   tuple(raw["film_kinds"]), str(raw["description"]))

    def to_dict(self) -> dict:
        return {"age_min": self.age_min, "age_max": self.age_max, "views": list(self.views),
                "film_kinds": list(self.film_kinds), "description": self.description}

    def age_within(self, age_years: float) -> bool:
        return self.age_min <= float(age_years) < self.age_max + 1

    @property
    def ages(self) -> str:
        return f"{self.age_min}-{self.age_max} years"


KERMANY_CHILDREN = Population(1, 5, ("PA", "AP"), ("CR", "DX"),
                              "children aged 1-5, frontal (AP/PA) chest radiographs")
"""The shipped model's population: Kermany et al.'s pediatric anterior-posterior films."""


@dataclass(frozen=True)
class IntendedUse:
    status: str        # within | outside | unknown
    reason: str        # one sentence; never quotes an age or a date
    evidence: str      # dicom header | given age | film check | none


@dataclass(frozen=True)
class FilmReading:
    """What the learned check found on one film: both scores and whether they cross the line."""
    adult_score: float      # P(adult) of the adult-vs-child regression nearest its line (or furthest over)
    frontal_score: float    # central strip minus lung fields (high on a frontal film)
    adult: bool
    lateral: bool
    unfamiliar: bool = False    # unlike every child the model was trained on (and not read as an adult)


def column_profile(model_input: np.ndarray) -> np.ndarray:
    """Mean brightness of each column of the (S, S[, 1]) model input, rank-normalised first (so
    the exposure does not matter): two dark lung fields either side of a bright mediastinum on a
    frontal film, one lopsided sweep (spine at one edge) on a lateral one."""
    x = np.asarray(model_input, np.float64).reshape(model_input.shape[0], model_input.shape[1])
    order = _stable_order(x.ravel())
    ranks = np.empty(x.size, np.int64)
    ranks[order] = np.arange(x.size)        # the inverse permutation: argsort(argsort(x)), one sort cheaper
    x = ranks.reshape(x.shape) / max(x.size - 1, 1)
    profile = x[int(0.15 * len(x)):int(0.85 * len(x))].mean(axis=0)   # the thorax's rows
    return profile - profile.mean()


def _stable_order(values: np.ndarray) -> np.ndarray:
    """np.argsort(values, kind="stable"), ~4x faster for the model input (float32 values >= 0):
    one unstable sort of unique (value bits, index) keys, whose order is the stable one."""
    v32 = values.astype(np.float32) + np.float32(0)          # + 0: -0.0 becomes 0.0
    if len(values) >= 2 ** 32 or not (v32.min(initial=0) >= 0 and np.array_equal(v32, values)):
        return np.argsort(values, kind="stable")              # not exact in float32 bits: the plain way
    keys = (v32.view(np.uint32).astype(np.uint64) << np.uint64(32)) | np.arange(len(values), dtype=np.uint64)
    return (np.sort(keys) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def frontal_score(model_input: np.ndarray) -> float:
    """How much brighter the central strip (mediastinum, spine) is than the two lung fields beside
    it: clearly positive on a frontal film; near zero or below on a lateral one, where the lungs
    overlap in the middle and the spine lies at one edge."""
    p = column_profile(model_input)
    n = len(p)
    centre = p[int(0.42 * n):int(0.58 * n)].mean()
    flanks = np.r_[p[int(0.18 * n):int(0.35 * n)], p[int(0.65 * n):int(0.82 * n)]].mean()
    return float(centre - flanks)


@dataclass
class AdultRegression:
    """Logistic regression adult (1) vs child (0) on standardised features; an adult's film at
    P(adult) >= `at` (a percentile of the validation children's)."""
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    at: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(features) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))

    def arrays(self, prefix: str) -> dict:
        return {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale, f"{prefix}coef": self.coef,
                f"{prefix}intercept": np.array(self.intercept), f"{prefix}at": np.array(self.at)}

    @classmethod
    def from_arrays(cls, z, prefix: str, at: float | None = None) -> "AdultRegression":
        return cls(np.asarray(z[f"{prefix}mean"], np.float64), np.asarray(z[f"{prefix}scale"], np.float64),
                   np.asarray(z[f"{prefix}coef"], np.float64), float(z[f"{prefix}intercept"]),
                   float(z[f"{prefix}at"]) if at is None else at)


NEIGHBOURS = 5     # an unfamiliarity score: the mean distance to this many nearest training children


@dataclass
class Unfamiliarity:
    """How far a film lies from the Kermany children in one kind of features, read two ways: the
    mean distance to its NEIGHBOURS nearest training children on their first principal axes, and
    the squared length of what lies off those axes; unfamiliar when either reaches its line
    (`at`: percentiles of the val children's). Fitted on children only: an adult source never seen
    is caught for being unlike them, not for being like another adult source."""
    mean: np.ndarray          # (D,) standardisation of the features
    scale: np.ndarray
    axes: np.ndarray          # (k, D) orthonormal principal axes of the standardised training children
    reference: np.ndarray     # (n, k) training children on those axes
    at: np.ndarray            # (2,) lines: neighbour distance, off-axis residual

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(n, 2): neighbour distance and off-axis residual of each film."""
        z = (np.atleast_2d(np.asarray(features, np.float64)) - self.mean) / self.scale
        t = z @ self.axes.T
        residual = ((z - t @ self.axes) ** 2).sum(axis=1)
        near = []
        for i in range(0, len(t), 256):      # bounded memory: 256 films x n references at a time
            d2 = ((t[i:i + 256, None, :] - self.reference[None]) ** 2).sum(axis=-1)
            near.append(np.sqrt(np.partition(d2, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]).mean(axis=1))
        return np.c_[np.concatenate(near) if near else np.zeros(0), residual]

    def flags(self, features: np.ndarray) -> np.ndarray:
        return np.any(self.scores(features) >= self.at, axis=1)   # an unused line sits at +inf

    def arrays(self, prefix: str) -> dict:
        return {f"{prefix}mean": self.mean, f"{prefix}scale": self.scale, f"{prefix}axes": self.axes,
                f"{prefix}reference": self.reference, f"{prefix}at": np.asarray(self.at, np.float64)}

    @classmethod
    def from_arrays(cls, z, prefix: str) -> "Unfamiliarity":
        return cls(*(np.asarray(z[f"{prefix}{k}"], np.float64) for k in ("mean", "scale", "axes", "reference", "at")))


@dataclass
class FilmCheck:
    """The learned part. Adult vs child: a regression on the image embedding (computed for the case
    anyway), one on the film's shape (pneumo.inference.film_features, ~1.3 ms), or both, a film
    flagged when either says adult; frontal vs lateral: the frontal score. Thresholds on validation."""
    embedding: AdultRegression | None     # reads gate_features(early, late)
    shape: AdultRegression | None         # reads film_features(model input)
    frontal_at: float                     # frontal score below this: a lateral film
    unfamiliar: dict = field(default_factory=dict)   # kind (SHAPE, TRUNK_KINDS) -> Unfamiliarity
    trunk: object = field(default=None, compare=False, repr=False)   # FilmTrunk: the trunk kinds' features

    def __post_init__(self):
        if self.embedding is None and self.shape is None:
            raise PneumoError("a film check needs an embedding or a film-shape regression")

    @property
    def inputs(self) -> str:
        return BOTH if self.embedding and self.shape else EMBEDDING if self.embedding else SHAPE

    def parts(self) -> dict[str, AdultRegression]:
        return {k: r for k, r in ((EMBEDDING, self.embedding), (SHAPE, self.shape)) if r is not None}

    def adult_scores(self, embedding=None, shape=None) -> dict[str, np.ndarray]:
        """P(adult) of each regression, from its features (the image embedding; film_features)."""
        given = {EMBEDDING: embedding, SHAPE: shape}
        return {k: r.scores(given[k]) for k, r in self.parts().items()}

    def adult_flags(self, embedding=None, shape=None) -> np.ndarray:
        """Either regression at or above its line."""
        scores = self.adult_scores(embedding, shape)
        return np.any([s >= self.parts()[k].at for k, s in scores.items()], axis=0)

    def unfamiliar_flags(self, feats: dict, n: int) -> np.ndarray:
        """Unlike the training children in any kind of features (feats: kind -> (n, d)) read that way."""
        flags = [u.flags(feats[k]) for k, u in self.unfamiliar.items()]
        return np.any(flags, axis=0) if flags else np.zeros(n, bool)

    def features(self, model_inputs, embedding=None, trunk=None) -> dict:
        """Every kind of features this check reads, of (n, S, S[, 1]) model inputs; `trunk`: the film
        trunk's (n, TRUNK_WIDTH) features where the encoder already gave them, else the trunk runs."""
        feats = {EMBEDDING: embedding}
        if self.shape is not None or SHAPE in self.unfamiliar:
            feats[SHAPE] = film_features(model_inputs)
        if set(self.unfamiliar) & set(TRUNK_KINDS):
            feats.update(self.trunk(model_inputs) if trunk is None else
                         {k: np.asarray(trunk, np.float64)[:, a:b] for k, (a, b) in TRUNK_KINDS.items()})
        return feats

    def read(self, features: np.ndarray, model_input: np.ndarray, trunk=None) -> FilmReading:
        """features: the case's image embedding (gate_features); model_input: the (S, S[, 1]) input;
        trunk: its (1, TRUNK_WIDTH) trunk features where the encoder gave them."""
        feats = self.features(model_input, features, trunk)
        scores = {k: float(s[0]) for k, s in self.adult_scores(features, feats.get(SHAPE)).items()}
        # the reading's score is that of the regression furthest over (or nearest to) its line
        key = max(scores, key=lambda k: scores[k] - self.parts()[k].at)
        frontal = frontal_score(model_input)
        adult = bool(self.adult_flags(features, feats.get(SHAPE))[0])
        return FilmReading(scores[key], frontal, adult, frontal < self.frontal_at,
                           not adult and bool(self.unfamiliar_flags(feats, 1)[0]))

    def save(self, path: str | Path) -> Path:
        arrays = {"inputs": np.array(self.inputs), "frontal_at": np.array(self.frontal_at)}
        if self.embedding is not None:     # the pre-2.0 keys: mean, scale, coef, intercept, thresholds
            arrays.update({k: v for k, v in self.embedding.arrays("").items() if k != "at"},
                          thresholds=np.array([self.embedding.at, self.frontal_at]))
        if self.shape is not None or SHAPE in self.unfamiliar:
            arrays.update(shape_features=np.array(FILM_FEATURES))
        if self.shape is not None:
            arrays.update(self.shape.arrays("shape_"))
        for kind, u in self.unfamiliar.items():
            arrays.update(u.arrays(f"unfamiliar_{kind}_"))
        arrays["unfamiliar"] = np.array(",".join(self.unfamiliar))
        np.savez(path, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, trunk=None) -> "FilmCheck":
        """trunk: the bundle's FilmTrunk, for a check that reads the trunk's features."""
        with np.load(path, allow_pickle=False) as z:
            inputs = str(z["inputs"]) if "inputs" in z.files else EMBEDDING
            if inputs == FILM_FEATURES:   # a film-shape check saved before the combined format
                adult_at, frontal_at = (float(v) for v in z["thresholds"])
                return cls(None, AdultRegression.from_arrays(z, "", adult_at), frontal_at)
            if inputs not in INPUTS:
                raise PneumoError(f"the film check reads unknown inputs {inputs!r}")
            if inputs != EMBEDDING and str(z["shape_features"]) != FILM_FEATURES:
                raise PneumoError(f"the film check was fitted on film features {str(z['shape_features'])!r}, "
                                  f"this version computes {FILM_FEATURES!r}")
            frontal_at = float(z["frontal_at"]) if "frontal_at" in z.files else float(z["thresholds"][1])
            embedding = AdultRegression.from_arrays(z, "", float(z["thresholds"][0])) if inputs != SHAPE else None
            shape = AdultRegression.from_arrays(z, "shape_") if inputs != EMBEDDING else None
            kinds = [k for k in str(z["unfamiliar"]).split(",") if k] if "unfamiliar" in z.files else []
            if SHAPE in kinds and str(z["shape_features"]) != FILM_FEATURES:
                raise PneumoError(f"the film check was fitted on film features {str(z['shape_features'])!r}, "
                                  f"this version computes {FILM_FEATURES!r}")
            if set(kinds) & set(TRUNK_KINDS) and trunk is None:
                raise PneumoError("the film check reads the film trunk, and the bundle has no film_trunk.tflite")
            return cls(embedding, shape, frontal_at,
                       {k: Unfamiliarity.from_arrays(z, f"unfamiliar_{k}_") for k in kinds}, trunk)


def read_film_check(bundle_dir) -> FilmCheck | None:
    path, trunk = Path(bundle_dir) / FILM_CHECK_FILE, Path(bundle_dir) / TRUNK_FILE
    return FilmCheck.load(path, FilmTrunk(trunk) if trunk.is_file() else None) if path.is_file() else None


def assess(population: Population | None, *, has_image: bool, header_age: float | None = None,
           given_age: float | None = None, view_position: str | None = None,
           film: FilmReading | None = None, modality: str | None = None,
           header_age_bounds: tuple[float, float] | None = None,
           header_age_source: str | None = None) -> IntendedUse:
    """Judge one case against the population, strongest evidence first (see the module text).
    `header_age_bounds`: (at least, at most) years when the header has a birth date and no film
    date (pneumo.data.dicom_io.header_age); outside when the whole interval is."""
    if population is None:
        return IntendedUse(UNKNOWN, "this model states no intended population", "none")
    view = (view_position or "").strip().upper()
    if has_image and view in NOT_FRONTAL_VIEWS:
        return IntendedUse(OUTSIDE, f"the DICOM header says this is a {view} view; the model reads "
                                    "frontal (AP/PA) films only", "dicom header")
    kind = film_kind(modality)
    if has_image and kind and kind not in population.film_kinds:
        return IntendedUse(OUTSIDE, f"the DICOM header says this is a {kind} image; the model was validated on "
                                    f"{'/'.join(population.film_kinds)} films only", "dicom header")
    if header_age is None and header_age_bounds is not None and has_image:
        low, high = header_age_bounds
        if low >= population.age_max + 1 or high < population.age_min:
            return IntendedUse(OUTSIDE, "the DICOM header's birth date alone (no film date) gives an age outside "
                                        f"{population.ages} for any film taken since DICOM began (1993); the model "
                                        f"was validated on {population.description} only", "dicom header")
    header_words = f"the DICOM header ({header_age_source}) gives" if header_age_source else "the DICOM header gives"
    for age, source, evidence in ((header_age, header_words, "dicom header"),
                                  (given_age, "the age given is", "given age")):
        if age is not None:
            if not population.age_within(age):
                return IntendedUse(OUTSIDE, f"{source} an age outside {population.ages}; the model "
                                            f"was validated on {population.description} only", evidence)
            if not has_image:
                return IntendedUse(WITHIN, f"{source} an age within {population.ages}", evidence)
            if film is not None and film.lateral and view not in FRONTAL_VIEWS:
                return _lateral(population)
            return IntendedUse(WITHIN, f"{source} an age within {population.ages}"
                                       + (f" and a {view} view" if view in FRONTAL_VIEWS else ""), evidence)
    if not has_image:
        return IntendedUse(UNKNOWN, "no film and no age: whether this patient is one the model was "
                                    f"validated on ({population.description}) is not known", "none")
    if film is None:
        return IntendedUse(UNKNOWN, "no age was given and this model has no learned check of the film",
                           "none")
    lateral = film.lateral and view not in FRONTAL_VIEWS
    if lateral and film.adult:
        return IntendedUse(OUTSIDE, "the film looks neither like a child's nor like a frontal film (learned "
                                    f"check on the film); the model was validated on {population.description}",
                           "film check")
    if lateral:
        return _lateral(population)
    if film.adult:
        return IntendedUse(OUTSIDE, "the film looks like an adult's (learned check on the film; give the "
                                    f"age if it is known); the model was validated on {population.description}",
                           "film check")
    if film.unfamiliar:
        return IntendedUse(OUTSIDE, "the film is unlike every child's film the model was trained on (learned check "
                                    f"on the film; give the age if it is known); it was validated on "
                                    f"{population.description}", "film check")
    return IntendedUse(WITHIN, "the film looks like a child's frontal film (learned check; no age given)",
                       "film check")


def _lateral(population: Population) -> IntendedUse:
    return IntendedUse(OUTSIDE, "the film looks like a lateral view (no bright central strip between two lung fields); the "
                                f"model was validated on {population.description}", "film check")
