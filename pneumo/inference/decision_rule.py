"""One decision rule for every case: PNEUMONIA when the calibrated probability reaches one
operating threshold, whatever the case holds (film and labs, film only, labs only).

Each view keeps its own validation temperature, so a probability means the same in every view;
one threshold on those probabilities means adding a lab value can move the label only the way it
moves the probability. The threshold maximises Youden's J (sensitivity + specificity - 1) on the
validation cases read all three ways at once (each case once per view): pneumo.training.threshold
chooses it, this module applies it."""
from __future__ import annotations

NEAR_THRESHOLD = 0.10     # |p - threshold| below this reads "near threshold"
RULE = ("one threshold for every case: PNEUMONIA when the calibrated probability is at least the "
        "threshold; it maximises Youden's J (sensitivity + specificity - 1) on the validation cases, each read as film "
        "and labs, film only and labs only (every view calibrated on validation by its own temperature)")


def label_of(probability: float, threshold: float) -> str:
    """The rule itself, in one place."""
    return "PNEUMONIA" if probability >= threshold else "NORMAL"


def band_of(probability: float, threshold: float, *, has_warning: bool, members_agree: bool) -> str:
    """How much to trust the label, worst first: caution (a warning fired), members disagree
    (the ensemble straddles the threshold), near threshold, clear. Never clear with a warning."""
    if has_warning:
        return "caution"
    if not members_agree:
        return "members disagree"
    return "near threshold" if abs(probability - threshold) < NEAR_THRESHOLD else "clear"
