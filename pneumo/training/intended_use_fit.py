"""Fit and measure a bundle's intended-use film check (pneumo.inference.intended_use.FilmCheck).

    python -m pneumo intended-use --bundle models/pneumo-fusion

Children: the Kermany films (its train/val/test splits, disjoint by patient), each train film
also seen at 128 px and back (the adult NIH films come at 128 px, so blur must not mean
"adult"). Adults: the Hannover COVID-19 repository and the NIH ChestX-ray14 sample, split here
by patient into train / val / test (60/20/20, seeded). Lateral films (ieee8023) are used only to
measure the view check, never to fit or threshold it.

Choices, on validation only: the regularisation C by validation ROC AUC (children vs adults;
0.01 0.9967, 0.05 0.9982, 0.2 0.9986, 1.0 0.9985 -> 0.2); the adult check flags at the 99th
percentile of P(adult) of the Kermany val children (at least 0.5), so about 1 in 100 children is
flagged where the target allows 2; the view check flags below the 0.5th percentile of the frontal
score of the val children (its false alarms matter only inside the population: an adult's film is
outside anyway). Test figures are reported after that."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pneumo import config
from pneumo.data.cohorts.base import split_groups
from pneumo.data.image_cache import image_cache, kermany_cache
from pneumo.inference.intended_use import FILM_CHECK_FILE, KERMANY_CHILDREN, FilmCheck, Population, frontal_score
from pneumo.inference.reference_set import gate_features
from pneumo.models.bundle import load_bundle, update_meta

ADULT_SPLIT = (0.6, 0.2, 0.2)
LOW_RES = 128


def adult_films(data_dir: Path, seed: int = 0) -> pd.DataFrame:
    """path, source, patient, split for every readable adult frontal film."""
    rows = []
    cov = data_dir / "adult" / "covid-19-image-repository"
    with open(cov / "data.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            path = cov / "png" / f"{r['image_id']}.png"
            if path.is_file():
                rows.append((str(path), "hannover-covid", "cov:" + r["patient_id"]))
    for path in sorted((data_dir / "adult" / "kcr2019d1" / "NIH1000").glob("*/*/*.png")):
        rows.append((str(path), "nih-chestxray14", "nih:" + path.name.split("_")[0]))
    frame = pd.DataFrame(rows, columns=["path", "source", "patient"]).drop_duplicates("path")
    groups = pd.Series(0, index=sorted(frame["patient"].unique()))
    assign = split_groups(groups, ADULT_SPLIT, seed)
    frame["split"] = frame["patient"].map(assign)
    return frame.reset_index(drop=True)


def lateral_films(data_dir: Path) -> list[str]:
    folder = data_dir / "adult" / "ieee8023-laterals" / "images"
    return sorted(str(p) for p in folder.glob("*") if p.is_file() and p.stat().st_size > 0)


def _low_res(x: np.ndarray, side: int = LOW_RES) -> np.ndarray:
    """uint8 (n, S, S) films shrunk to side px and back: what a 128 px original looks like."""
    s = x.shape[1]
    return np.stack([np.asarray(Image.fromarray(a).resize((side, side), Image.BILINEAR)
                                .resize((s, s), Image.BILINEAR)) for a in x])


def fit_check(child_train, adult_train, child_val_x, child_val,
              c: float = 0.2, child_quantile: float = 0.99) -> FilmCheck:
    """Logistic regression adult (1) vs child (0) on standardised embeddings; thresholds from val."""
    from sklearn.linear_model import LogisticRegression

    X = np.concatenate([child_train, adult_train]).astype(np.float64)
    y = np.r_[np.zeros(len(child_train)), np.ones(len(adult_train))]
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit((X - mean) / scale, y)
    check = FilmCheck(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]), 0.5, 0.0)
    check.adult_at = max(0.5, float(np.quantile(check.adult_scores(child_val), child_quantile)))
    # the view check's false alarms matter inside the population only (an adult is outside anyway)
    check.frontal_at = float(np.quantile([frontal_score(a) for a in child_val_x], 0.005))
    return check


def _rates(check: FilmCheck, emb, x) -> dict:
    adult = check.adult_scores(emb) >= check.adult_at
    lateral = np.array([frontal_score(a) for a in x]) < check.frontal_at
    return {"n": int(len(emb)), "flagged": round(float(np.mean(adult | lateral)), 4) if len(emb) else None,
            "flagged_adult": round(float(np.mean(adult)), 4) if len(emb) else None,
            "flagged_lateral": round(float(np.mean(lateral)), 4) if len(emb) else None}


def write_intended_use(bundle_dir, population: Population, check: FilmCheck, report: dict) -> Path:
    """Save the film check beside the weights and state the population, the check and its
    measured figures in bundle.json (its digest verified on load like the weights)."""
    path = check.save(Path(bundle_dir) / FILM_CHECK_FILE)
    update_meta(bundle_dir, verified_file=FILM_CHECK_FILE,
                intended_use={**population.to_dict(), "film_check": report})
    return path


def build(bundle_dir, data_dir: Path | None = None, seed: int = 0, log=print,
          cache: Path | None = None) -> dict:
    """Fit, measure and write the check into the bundle; cache: an .npz of the embeddings (keyed
    by the weights' digest) so a refit with other settings does not embed the films again."""
    from pneumo.models.network import embed_images

    data_dir = Path(data_dir or config.data_dir())
    bundle = load_bundle(bundle_dir)
    size = bundle.image_size

    def embed(x):
        return gate_features(*embed_images(bundle.image_encoder, x))

    cohort, xk = kermany_cache(size, log=log)
    split = cohort.frame["split"].to_numpy()
    adults = adult_films(data_dir, seed)
    xa = image_cache(adults["path"].tolist(), size, None, log=log)
    lat = lateral_films(data_dir)
    xl = image_cache(lat, size, None, log=log)
    train = split == "train"
    test = split == "test"
    key = bundle.meta["weights"]["model.weights.h5"]
    if cache is not None and cache.is_file() and str(np.load(cache)["key"]) == key:
        z = np.load(cache)
        ek, ea, el, ek_low, ek_test_low = (z[k] for k in ("ek", "ea", "el", "ek_low", "ek_test_low"))
    else:
        log(f"embedding {len(xk)} Kermany films (and their train and test films at {LOW_RES} px), "
            f"{len(xa)} adult and {len(xl)} lateral films")
        ek, ea, el = embed(xk), embed(xa), embed(xl)
        ek_low, ek_test_low = embed(_low_res(xk[train])), embed(_low_res(xk[test]))
        if cache is not None:
            np.savez(cache, key=key, ek=ek, ea=ea, el=el, ek_low=ek_low, ek_test_low=ek_test_low)
    asplit = adults["split"].to_numpy()
    check = fit_check(np.concatenate([ek[train], ek_low]), ea[asplit == "train"],
                      xk[split == "val"], ek[split == "val"])
    report = {
        "method": ("adult vs child: logistic regression (C 0.2, chosen by val ROC AUC; balanced) on the "
                   "standardised image embedding [img_early, img_late]; flags at P(adult) >= adult_at = the "
                   "99th percentile of Kermany val children (at least 0.5). Frontal vs lateral: the central strip's "
                   "brightness over the lung fields' (rank-normalised column profile); flags below "
                   "frontal_at = the 0.5th percentile of the Kermany val children. Thresholds "
                   "on validation only; lateral films never fitted or thresholded on."),
        "adult_at": check.adult_at, "frontal_at": check.frontal_at,
        "train": {"children": int(train.sum()), "children_low_res": int(train.sum()),
                  "adults": int((asplit == "train").sum())},
        "val": {"kermany_children": _rates(check, ek[split == "val"], xk[split == "val"]),
                "adults": _rates(check, ea[asplit == "val"], xa[asplit == "val"])},
        "test": {"kermany_children": _rates(check, ek[split == "test"], xk[split == "test"]),
                 "kermany_children_at_128px": _rates(check, ek_test_low, _low_res(xk[test])),
                 **{f"adults_{src}": _rates(check, ea[(asplit == "test") & (adults["source"] == src).to_numpy()],
                                            xa[(asplit == "test") & (adults["source"] == src).to_numpy()])
                    for src in sorted(adults["source"].unique())},
                 "adults": _rates(check, ea[asplit == "test"], xa[asplit == "test"]),
                 "laterals": _rates(check, el, xl)},
        "films": {"children": "Kermany (train / carved val / official test, by patient)",
                  "adults": "Hannover COVID-19 repository + NIH ChestX-ray14 sample (kcr2019d1), split by patient here",
                  "laterals": "ieee8023 lateral films (evaluation only)"},
    }
    write_intended_use(bundle_dir, KERMANY_CHILDREN, check, report)
    for part in ("val", "test"):
        for name, r in report[part].items():
            log(f"{part} {name}: n {r['n']}, flagged {r['flagged']} (adult {r['flagged_adult']}, "
                f"lateral {r['flagged_lateral']})")
    return report
