"""The paper's grid in two variants, each labelled in one line wherever it is shown, and the paper's
Tables 1-2 beside both (`python -m pneumo tables`).

- official-test (configs/paper.toml -> results/paper-50-500.json, the fast variant): train/val films
  from Kermany's official train, test films from its official test; the frozen shipped encoder.
- same-source (configs/paper-same-source.toml -> results/paper-same-source.json, the paper's protocol
  end to end): 550 films of one release split by patient at random; the film network trained per run
  from the ImageNet start on the run's train films (pneumo.experiments.film_per_run).
Both pair each film with another person's lab panel (semi-real)."""
from __future__ import annotations

from pneumo.experiments.paper_tables import PAPER_TABLES, SOURCE, paper_consistency_note
from pneumo.models.names import model_name, regime_name

VARIANT_FILES = ("paper-50-500", "paper-same-source")     # the order they are shown in
OFFICIAL_TEST = "official-test"
OFFICIAL_TEST_LINE = ("official-test: train/val films from Kermany's official train, test films from its official "
                      "test (another release, whose normal films are shifted from train)")
FROZEN_LINE = ("frozen film network: the shipped encoder (trained on all of Kermany's official train), "
               "embeddings cached once")


def variant(results: dict) -> str:
    """The variant's short name; files written before variants were recorded are read by their cohort."""
    cohort = results.get("cohort", {})
    if cohort.get("variant"):
        return str(cohort["variant"])
    return OFFICIAL_TEST if "kermany+" in str(cohort.get("name", "")) else str(results.get("experiment", "?"))


def variant_line(results: dict) -> str:
    """One line: what the cohort is and how the film network was had."""
    cohort = results.get("cohort", {})
    line = cohort.get("variant_line") or (OFFICIAL_TEST_LINE if variant(results) == OFFICIAL_TEST else cohort.get("name", "?"))
    enc = results.get("protocol", {}).get("encoder", {})
    film = enc.get("line") or (FROZEN_LINE if enc.get("weights") == "bundle" else "")
    return f"{line}; {film}" if film else line


def _fmt(stat: dict | None, scale: float = 1.0, digits: int = 4) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    text = f"{stat['mean'] * scale:.{digits}f}"
    if stat.get("ci_low") is not None and stat.get("ci_high") is not None:
        text += f" [{stat['ci_low'] * scale:.{digits}f}, {stat['ci_high'] * scale:.{digits}f}]"
    return text


def _entry(results: dict, model: str, regime: str) -> dict:
    return next((e for e in results.get("entries", []) if e["model"] == model and e["regime"] == regime), {})


def table1(all_results: list[dict]) -> str:
    """The paper's Table 1 rows, then each variant's row for the same model and regime."""
    names = [variant(r) for r in all_results]
    lines = ["| Model | Paper: test accuracy, % | " + " | ".join(f"{n}: test accuracy, %" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for row in PAPER_TABLES["table1"]["rows"]:
        model, regime = row["ours"]
        ours = [_fmt(_entry(r, model, regime).get("summary", {}).get("test", {}).get("accuracy"), 100, 1)
                for r in all_results]
        label = f"{row['model']} (ours: {model_name(model, paper=True)}, {regime_name(regime, paper=True)})"
        lines.append(f"| {label} | {row['test_accuracy_pct']:.1f} | " + " | ".join(ours) + " |")
    return "\n".join(lines)


def table2(all_results: list[dict]) -> str:
    """Table 2 (fusion, imbalanced): the paper's train and test figures, then each variant's."""
    spec = PAPER_TABLES["table2"]
    names = [variant(r) for r in all_results]
    head = "| Metric | Train (paper) | Test (paper) | " + " | ".join(f"Train ({n}) | Test ({n})" for n in names) + " |"
    lines = [head, "|---|---|---|" + "---|---|" * len(names)]
    for key, label in spec["metrics"].items():
        cells = []
        for r in all_results:
            summary = _entry(r, spec["model"], spec["regime"]).get("summary", {})
            train = summary.get("train", {}).get(key)
            cells += [_fmt({"mean": train["mean"]} if train else None), _fmt(summary.get("test", {}).get(key))]
        lines.append(f"| {label} | {spec['train'][key]:.4f} | {spec['test'][key]:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def adasyn_vs_imbalanced(results: dict, metrics=("f1", "mcc", "pr_auc")) -> str:
    """The fusion model's ADASYN - imbalanced difference of run means, with its paired bootstrap 95% CI."""
    rows = {c["metric"]: c for c in results.get("comparisons", [])
            if c["model"] == "fusion" and c["regime"] == "adasyn" and c["versus"] == "imbalanced"}
    parts = []
    for m in metrics:
        c = rows.get(m)
        if c is not None:
            ci = f" [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]" if c.get("ci_low") is not None else ""
            parts.append(f"{m} {c['difference']:+.3f}{ci}")
    return ", ".join(parts) if parts else "-"


def render(all_results: list[dict]) -> str:
    """Both tables with every variant beside the paper, each variant named and described in one line."""
    t1, t2 = PAPER_TABLES["table1"], PAPER_TABLES["table2"]
    legend = []
    for r in all_results:
        test = r.get("cohort", {}).get("counts", {}).get("test", {})
        wall = r.get("timing", {}).get("wall_seconds")
        legend.append(f"- **{variant(r)}** ({r.get('experiment', '?')}, test {test.get('1', '?')} pneumonia + "
                      f"{test.get('0', '?')} other, {r.get('n_runs', '?')} run(s)"
                      + (f", grid {wall / 60:.0f} min" if wall else "") + f"): {variant_line(r)}. "
                      f"Fusion ADASYN - imbalanced (paired bootstrap 95% CI): {adasyn_vs_imbalanced(r)}.")
    return "\n".join([
        "Variants (both semi-real: each film paired with a real lab panel of another person):", *legend, "",
        f"## Table 1. {t1['caption']}", "", table1(all_results), "",
        f"## Table 2. {t2['caption']}", "", table2(all_results), "",
        f"Paper: {SOURCE}: their private MIMIC-derived cohort (50 pneumonia + 500 other), 5 runs. "
        "Ours: mean over runs [bootstrap 95% CI of the mean]; train figures are run means.", "",
        paper_consistency_note(), "",
    ])
