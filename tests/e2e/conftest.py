"""A real app and a real browser: `streamlit run app.py` on a free port (PNEUMO_HOME in a temp
dir), Debian's chromium driven by Playwright. Screenshots go to tests/e2e/artifacts/."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from pneumo import config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))      # tests/: the shared helpers
from dicom_support import in_ci  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
APP_LOG: list[Path] = []  # the running app's log, quoted when a browser test fails
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def missing(what: str, how: str) -> None:
    """A browser-test prerequisite is absent: a failure in CI (as Orthanc and pdftotext are), else a skip."""
    if in_ci():
        pytest.fail(f"CI requires {what} ({how})")
    pytest.skip(f"{what} not installed ({how})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc, seconds: float = 60) -> bool:
    """True once the app answers its health check; False if it exits or the time runs out."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def write_demo_results(folder: Path) -> None:
    """A small results file so the metrics page has curves where results/ is still empty."""
    rng = np.random.default_rng(0)
    y = [0] * 60 + [1] * 20
    entries = []
    for model, regime, sep in (("fusion", "imbalanced", 0.55), ("fusion", "adasyn", 0.5),
                               ("image_only", "imbalanced", 0.4)):
        p = [np.clip(np.array(y) * sep + rng.uniform(0, 1 - sep, len(y)), 0, 1).round(4).tolist() for _ in range(3)]
        stat = lambda m: {"mean": m, "sd": 0.01, "ci_low": m - 0.02, "ci_high": m + 0.02}  # noqa: E731
        entries.append({"model": model, "regime": regime,
                        "runs": [{"seed": s, "threshold": 0.5} for s in range(3)],
                        "summary": {"test": {k: stat(v) for k, v in (("accuracy", 0.9), ("roc_auc", 0.93),
                                                                      ("pr_auc", 0.85), ("f1", 0.8), ("mcc", 0.74),
                                                                      ("loss", 0.25))}},
                        "test_cases": {"case_id": [f"c{i}" for i in range(len(y))], "y": y, "p": p}})
    (folder / "e2e-demo.json").write_text(json.dumps(
        {"schema": "pneumo.results/1", "experiment": "e2e-demo", "cohort": {"semi_real": True},
         "n_runs": 3, "entries": entries}))


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Start the app once for the session; yield its URL; stop it."""
    if shutil.which("streamlit", path=str(Path(sys.executable).parent)) is None:
        missing("streamlit in this environment", "pip install -r requirements.txt")
    tmp = tmp_path_factory.mktemp("e2e")
    env = dict(os.environ, PNEUMO_HOME=str(tmp / "home"), TF_CPP_MIN_LOG_LEVEL="3")
    if not any(config.results_dir().glob("*.json")):
        (tmp / "results").mkdir()
        write_demo_results(tmp / "results")
        env["PNEUMO_RESULTS_DIR"] = str(tmp / "results")
    with running_app(tmp, env) as url:
        yield url


@pytest.fixture(scope="session")
def app_starter():
    """running_app, for a test module that needs an app of its own settings (sign-in on, say)."""
    return running_app


@contextlib.contextmanager
def running_app(tmp: Path, env: dict, script: str = "serve.py"):
    """`streamlit run serve.py` (what `make run` serves) in its own process group; yields its URL."""
    log = open(tmp / "streamlit.log", "wb")
    APP_LOG[:] = [tmp / "streamlit.log"]
    for attempt in range(3):     # a free port is released before streamlit binds it: another may take it
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
                                 "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                                cwd=config.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        if _wait_healthy(url, proc):
            break
        log.flush()
        text = (tmp / "streamlit.log").read_text(errors="replace")
        exited = proc.poll() is not None      # exited: the port was likely taken; still running: a real fault
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        if attempt == 2 or not exited:
            pytest.fail("the app did not start:\n" + text[-3000:])
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group: streamlit and its children
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright", "pip install -r requirements.txt")
    if not Path(CHROMIUM).exists():
        missing(f"chromium at {CHROMIUM}", "make system-deps installs it")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


@pytest.fixture
def shot():
    return take_screenshot


def take_screenshot(page, name: str) -> Path:
    """Screenshots in tests/e2e/artifacts/ (git-ignored): the first screen at 1280x800, and the
    whole page (Streamlit scrolls an inner container, so the viewport is stretched to fit it)."""
    page.screenshot(path=str(ARTIFACTS / f"{name}-viewport.png"))
    height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                           " return m ? m.scrollHeight : document.body.scrollHeight; }")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
    page.wait_for_timeout(500)  # let plotly re-layout to the new size
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """When a browser test fails, quote what the page showed and the app's log in the report:
    CI keeps only the printed output, so this is what tells a timeout's cause."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed or "page" not in getattr(item, "funcargs", {}):
        return
    try:
        text = item.funcargs["page"].locator("body").inner_text(timeout=3000)
    except Exception as err:  # noqa: BLE001 - a report must not fail
        text = f"(page text unavailable: {type(err).__name__})"
    rep.sections.append(("page text at the failure", text[:4000]))
    if APP_LOG and APP_LOG[0].is_file():
        rep.sections.append(("app log (tail)", APP_LOG[0].read_text(errors="replace")[-3000:]))
