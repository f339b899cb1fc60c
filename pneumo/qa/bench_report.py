"""The benchmark's Markdown: each figure of a pneumo.qa.bench JSON report beside its target."""
from __future__ import annotations

TARGETS = {"predict_ms": 10, "predict_gradcam_contribution_ms": 60, "shap_s": 0.5, "cold_s": 10,
           "batch_cases_per_s": 40, "app_rss_mb": 1536, "grid_min": 15,
           "cold_predict_rss_mb": 400, "batch_peer_over_litert": 3.0, "cold_predict_litert_over_peer": 0.33,
           "auth_known_over_unknown": 2.0, "image_refusal_s": 2.0, "image_fuzz_input_s": 3.0, "labs_fuzz_s": 15.0}
REFERENCE = ("an open Keras pneumonia classifier on PyPI (Xception 150 px, frozen ImageNet): ~26 images/s, "
             "57 ms single-case, as quoted in the performance issue; not measured by us")


ROWS = (   # (label, part, keys into its JSON, unit, scale, target key, "lower"/"higher" is better)
    ("cold start: fresh process to first prediction", "cold", ("to_first_prediction_s",), "s", 1, "cold_s", "lower"),
    ("first explain in a fresh process (incl. SHAP's numba JIT)", "cold", ("first_explain_s",), "s", 1, None, ""),
    ("predict, one case, p50 (embed + checks + 4-corner head)", "case", ("predict", "p50"), "ms", 1, "predict_ms", "lower"),
    ("predict + Grad-CAM + contribution, p50", "case", ("predict_gradcam_contribution", "p50"), "ms", 1,
     "predict_gradcam_contribution_ms", "lower"),
    ("SHAP on labs, p50", "case", ("shap", "p50"), "s", 1e-3, "shap_s", "lower"),
    ("whole explain (warm), p50", "case", ("explain", "p50"), "ms", 1, None, ""),
    ("decode + preprocess, p50", "case", ("decode_preprocess", "p50"), "ms", 1, None, ""),
    ("batch (CLI path) throughput", "batch", ("cases_per_s",), "cases/s", 1, "batch_cases_per_s", "higher"),
    ("batch process peak RSS", "batch", ("peak_rss_mb",), "MiB", 1, None, ""),
    ("app process peak RSS, 3000x3000 DICOM", "memory", ("peak_rss_mb",), "MiB", 1, "app_rss_mb", "lower"),
    ("experiment grid", "grid", ("wall_s",), "min", 1 / 60, "grid_min", "lower"),
    ("sign-in: wrong password, known / unknown user (>= 0.5 too)", "guards", ("auth", "ratio"), "x", 1,
     "auth_known_over_unknown", "lower"),
    ("slowest hostile image refusal", "guards", ("image_refusal", "max_s"), "s", 1, "image_refusal_s", "lower"),
    ("slowest image fuzz input", "guards", ("image_fuzz", "max_s"), "s", 1, "image_fuzz_input_s", "lower"),
    ("labs fuzz, all inputs", "guards", ("labs_fuzz", "seconds"), "s", 1, "labs_fuzz_s", "lower"),
)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _row(name, value, unit, target=None, better="lower") -> str:
    tgt = "" if target is None else f"{'<=' if better == 'lower' else '>='} {target} {unit}"
    if value is None:
        return f"| {name} | - | {tgt} | |"
    ok = "" if target is None else ("yes" if (value <= target if better == "lower" else value >= target) else "NO")
    return f"| {name} | {_fmt(value)} {unit} | {tgt} | {ok} |"


def dig(d, keys):
    """d[k0][k1]... along keys, or None where a level is missing (a bench part that did not run)."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def markdown(r: dict) -> str:
    p, m = r["parts"], r["model"]
    lines = [f"Model {m['name']} {m['version']} ({m['image_size']} px, {'shipped' if m['shipped'] else 'NOT the shipped'}"
             f" bundle); {r['machine']['cpus']} CPUs, load avg {r['machine']['load_start']} -> {r['machine']['load_end']}",
             "", "| figure | measured | target | met |", "|---|---|---|---|"]
    for label, part, keys, unit, scale, target, better in ROWS:
        value = dig(p.get(part), keys)
        lines.append(_row(label, None if value is None else value * scale, unit, TARGETS.get(target), better))
        if part == "cold" and keys == ("to_first_prediction_s",) and "import_s" in (p.get("cold") or {}):
            c = p["cold"]
            lines.append(f"| of which import / bundle load / first predict | {c['import_s']:.2f} / {c['load_s']:.2f}"
                         f" / {c['first_predict_s']:.2f} s | | |")
    for key, v in (dig(p, ("case", "ratios")) or {}).items():
        before = next(x for k, x in v.items() if k.startswith("before"))
        after = next(x for k, x in v.items() if k.startswith("after"))
        lines.append(f"| before -> after: {key} | {before} -> {after} (x{v['speedup']}) | | |")
    for part, res in p.items():
        if isinstance(res, dict) and ("error" in res or res.get("status") not in (None, "ok")):
            lines.append(f"| {part} status | {res.get('status', 'failed')}: {res.get('error', res.get('why', ''))} | | |")
    if isinstance(p.get("runtime"), dict) and "cold_predict" in p["runtime"]:
        lines += ["", *runtime_table(p["runtime"])]
    lines += ["", f"Reference: {REFERENCE}."]
    if p.get("hostile"):
        lines += ["", "| hostile kind | tried | accepted | handled (typed, one line) | unclear | crashed | escaped | leaked |",
                  "|---|---|---|---|---|---|---|---|"]
        for kind, s in p["hostile"]["summary"].items():
            lines.append(f"| {kind} | {s['tried']} | {s['accepted']} | {s['handled']} | {s['unclear']} | "
                         f"{s['crashed']} | {s['escaped']} | {s['leaked']} |")
    return "\n".join(lines)


def runtime_table(rt: dict) -> list[str]:
    """Whole processes side by side (pneumo.qa.bench_runtime): ours on LiteRT, ours on Keras, the peer."""
    sides = ("litert", "keras", "peer")

    def ratio(figure, key):
        mine, peer = dig(rt, (figure, "litert", key)), dig(rt, (figure, "peer", key))
        return f"{peer / mine:.2f}x" if mine and peer else "-"
    rows = [("one film through `predict`, cold: wall", "cold_predict", "wall_s", "s"),
            ("one film through `predict`, cold: peak RSS", "cold_predict", "peak_rss_mb", "MiB"),
            (f"batch of {rt.get('films', '?')} films: wall", "batch", "wall_s", "s"),
            ("warm predict, p50", "warm", ("predict_ms", "p50"), "ms")]
    lines = ["| whole process | LiteRT (ours) | Keras (ours, before) | peer | peer / LiteRT |", "|---|---|---|---|---|"]
    for label, figure, key, unit in rows:
        keys = key if isinstance(key, tuple) else (key,)
        vals = [dig(rt, (figure, s, *keys)) for s in sides]
        cells = [f"{_fmt(v)} {unit}" if isinstance(v, (int, float)) else "-" for v in vals]
        lines.append(f"| {label} | {' | '.join(cells)} | {ratio(figure, key) if figure != 'warm' else '-'} |")
    lim = rt.get("limit") or {}
    if lim.get("floor_ms_per_film"):
        lines.append(f"| physical floor: {lim['encoder_macs_per_film'] / 1e6:.0f} MMAC a film at the machine's "
                     f"{lim['gemm_gmacs_per_s']} GMAC/s (float32 GEMM) | {lim['floor_ms_per_film']:.2f} ms | "
                     f"batch {lim.get('batch_over_floor', '-')}x it | warm predict "
                     f"{lim.get('warm_predict_over_floor', '-')}x it | |")
    if rt.get("peer_status"):
        lines.append(f"| peer | {rt['peer_status']} | | | |")
    return lines
