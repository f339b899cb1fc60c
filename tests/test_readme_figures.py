"""The README's table of the shipped model's figures is the one made from its metrics.json: a
retrained or rethresholded bundle cannot leave the README telling older numbers."""
from __future__ import annotations

import json
from pathlib import Path

from pneumo import config
from pneumo.present.model_card import figures_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_is_made_from_the_shipped_metrics(shipped_bundle):
    bundle_dir = config.default_model_dir()
    metrics = json.loads((bundle_dir / "metrics.json").read_text())
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    want = figures_table(metrics, semi_real=bool(meta.get("semi_real")))
    assert want in README.read_text(), "README's figures table is stale; paste this:\n" + want
    version = f"## The shipped model: {meta['name']} {meta['version']}"
    assert version in README.read_text(), f"README's model heading should read {version!r}"
