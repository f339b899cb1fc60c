"""The layer rule (README, Architecture), read from the source with ast, imports inside functions counted:
    cli, present, qa  >  service, experiments, training  >  inference, explain, evaluation  >  models  >  data  >  config, errors
A module imports only from its own layer or below, no in-project import circle exists, the library
never imports streamlit, only pneumo.cli parses arguments, and an in-project import inside a function is
allowed only for a module listed in LAZY (each of which must really pull in a heavy library)."""
from __future__ import annotations

import ast
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from pneumo import config

PKG = config.REPO_ROOT / "pneumo"
LAYERS = [{"config", "errors"}, {"data"}, {"models"}, {"inference", "explain", "evaluation"},
          {"service", "experiments", "training"}, {"cli", "present", "qa"}]
HEAVY = {"tensorflow", "keras", "shap", "sklearn", "plotly", "skimage"}

# Exactly the modules that load a heavy library on import; only these may be imported inside a
# function, so that every other module (the CLI's argument checks, the case, the pages) stays light:
LAZY = {
    "pneumo.models.network": "Keras: cohorts, bundles' metadata and the CLI's help load without it",
    "pneumo.inference.runner": "TensorFlow: the Keras path, for a bundle without an exported runtime (or cam graph)",
    "pneumo.models.grad_cam": "TensorFlow: Keras's Grad-CAM, the reference the exported cam graph is checked against",
    "pneumo.models.runtime_export": "TensorFlow: writes the LiteRT graph; predict and batch run it without TensorFlow",
    "pneumo.models.film_trunk": "TensorFlow: builds and exports the film check's trunk; the check runs it in LiteRT",
    "pneumo.training.head_fit": "Keras: the head's training loop",
    "pneumo.training.fit": "Keras: the ensemble and the experiments' TOML checks load without it",
    "pneumo.training.recipes": "Keras (through fit): the ensemble's checks load without it",
    "pneumo.training.rethreshold": "scikit-learn: a maintenance command, imported by nothing",
    "pneumo.experiments.classifiers": "Keras: an experiment's config is checked before any model is built",
    "pneumo.evaluation.metrics": "scikit-learn: the case record and the results page load without it",
    "pneumo.cli.train": "Keras: `python -m pneumo train` builds models; the other commands load without it",
    "pneumo.models.efficientnet_lite": "Keras: the ImageNet start's network; only import-start and training build it",
    "pneumo.models.imagenet_start": "Keras (through efficientnet_lite): converts a start once, offline",
    "pneumo.cli.import_start": "Keras: `python -m pneumo import-start` converts weights",
    "pneumo.cli.rethreshold": "scikit-learn: a maintenance command",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


@lru_cache(None)
def _imports(name: str) -> tuple[tuple[str, bool, int], ...]:
    """(imported module, inside a function?, line) for each import; `if TYPE_CHECKING:` blocks skipped."""
    out = []

    def visit(node, local):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.If) and "TYPE_CHECKING" in ast.unparse(ch.test):
                continue
            inner = local or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(ch, ast.ImportFrom) and ch.level == 0 and ch.module:
                for a in ch.names:
                    sub = f"{ch.module}.{a.name}"
                    out.append((sub if sub in MODULES else ch.module, inner, ch.lineno))
            elif isinstance(ch, ast.Import):
                out.extend((a.name, inner, ch.lineno) for a in ch.names)
            visit(ch, inner)

    visit(ast.parse(MODULES[name].read_text()), False)
    return tuple(out)


def _layer(name: str) -> int | None:
    parts = name.split(".")
    if len(parts) < 2 or parts[1] in ("__init__", "__main__"):
        return None          # the public surface and `python -m pneumo` sit above every layer
    return next(i for i, group in enumerate(LAYERS) if parts[1] in group)


def _heavy_at_import(name: str, seen: frozenset = frozenset()) -> set[str]:
    """The heavy libraries importing this module loads (module-level imports, followed in-project)."""
    found = set()
    for target, local, _ in _imports(name):
        if local:
            continue
        if target.split(".")[0] in HEAVY:
            found.add(target.split(".")[0])
        elif target in MODULES and target not in seen and target != name:
            found |= _heavy_at_import(target, seen | {name})
    return found


def test_every_module_sits_in_a_layer():
    names = [n for n in MODULES if _layer(n) is None]
    assert sorted(names) == ["pneumo", "pneumo.__main__"]


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for name in MODULES:
        mine = _layer(name)
        for target, _, line in _imports(name):
            if target in MODULES and mine is not None and _layer(target) is not None and _layer(target) > mine:
                upward.append(f"{MODULES[name].relative_to(PKG.parent)}:{line} imports {target}")
    assert not upward, "\n".join(upward)


def test_no_import_circle_even_through_imports_inside_functions():
    graph = {n: {t for t, _, _ in _imports(n) if t in MODULES and t != n and not n.startswith(t + ".")}
             for n in MODULES}
    state, path, circles = {}, [], []

    def walk(n):
        state[n] = "open"
        path.append(n)
        for t in sorted(graph[n]):
            if state.get(t) == "open":
                circles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                walk(t)
        path.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            walk(n)
    assert not circles, "\n".join(circles)


def test_imports_inside_functions_only_for_the_lazy_list():
    stray = [f"{MODULES[n].relative_to(PKG.parent)}:{line} imports {t} inside a function"
             for n in MODULES for t, local, line in _imports(n)
             if local and t in MODULES and t not in LAZY]
    assert not stray, "\n".join(stray)


def test_the_lazy_list_is_exactly_the_heavy_modules():
    heavy = {name for name in MODULES if _heavy_at_import(name)}
    assert not heavy - set(LAZY), f"now load a heavy library on import: {sorted(heavy - set(LAZY))}"
    assert not set(LAZY) - heavy, f"load no heavy library: import them at the top {sorted(set(LAZY) - heavy)}"


def test_the_library_never_imports_streamlit_and_only_cli_parses_arguments():
    assert len(MODULES) > 40
    for name in MODULES:
        roots = {t.split(".")[0] for t, _, _ in _imports(name)}
        assert "streamlit" not in roots, name
        assert "argparse" not in roots or name.startswith("pneumo.cli."), f"{name} parses arguments"


def test_public_surface_loads_without_tensorflow():
    code = ("import sys; from pneumo import Case, Predictor, read_image, parse_labs, LabPanel, Result, "
            "Explanation, load_bundle, __version__; "
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules), 'TF loaded'; "
            "assert callable(read_image) and Predictor.__name__ == 'Predictor'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_module_over_400_lines_says_why_at_its_top():
    for name, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > 400:
            assert "Long by design:" in (ast.get_docstring(ast.parse(text)) or ""), f"{name}: split it or say why"
