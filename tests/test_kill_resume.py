"""Kill a real batch process with SIGKILL mid-run, resume it, and count: every manifest row
present once in OUT, and one case-log row per scored case (none twice).

Uses `python -m pneumo batch` with the shipped model (committed: without it the test fails).
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumo import config
from pneumo.service.case_log import CaseLog

N_IMAGES = 60


def _write_cohort(root: Path) -> Path:
    from dicom_support import chest_pixels     # real films where the data is there: the gate refuses made-up ones

    rows = []
    for i in range(N_IMAGES):
        img = chest_pixels(128, seed=i)
        Image.fromarray((img * 255).astype(np.uint8), mode="L").save(root / f"cxr_{i:03d}.png")
        rows.append({"image_path": f"cxr_{i:03d}.png", "case": f"C{i}",
                     "wbc": f"{4 + i % 12}" if i % 3 else "", "sodium": "140"})
    rows[7]["image_path"] = "../../etc/passwd"           # error rows must survive a resume too
    rows[31]["image_path"] = "missing.png"
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def _command(manifest: Path, out: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "pneumo", "batch", str(manifest), "--out", str(out), "--quiet",
            *(["--resume"] if resume else [])]


def _data_rows(out: Path) -> list[dict]:
    with open(out, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path, shipped_bundle):
    t0 = time.monotonic()
    data = tmp_path / "data"
    data.mkdir()
    manifest, out, home = _write_cohort(data), tmp_path / "out.csv", tmp_path / "home"
    env = {**os.environ, "PNEUMO_HOME": str(home), "PYTHONPATH": os.pathsep.join(
        filter(None, [str(config.REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(_command(manifest, out, resume=False), env=env, cwd=config.REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = False
    while proc.poll() is None and time.monotonic() - t0 < 45:
        if out.exists() and out.read_bytes().count(b"\n") > 1 + 12:   # header + a dozen rows
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    stderr = proc.stderr.read().decode(errors="replace")
    assert killed, f"the batch ended before it could be killed (rc {proc.returncode}): {stderr[-500:]}"
    before = len(_data_rows(out))
    assert 12 <= before < N_IMAGES
    # As if the kill had landed mid-write too: a torn half line at the end of OUT.
    last = out.read_bytes().splitlines(keepends=True)[-1]
    with open(out, "ab") as fh:
        fh.write(last[: len(last) // 2])

    rc = subprocess.run(_command(manifest, out, resume=True), env=env, cwd=config.REPO_ROOT,
                        capture_output=True, timeout=50).returncode
    assert rc == 0
    rows = _data_rows(out)
    keys = Counter((r["row"], r["image_path"]) for r in rows)
    duplicates = sum(n - 1 for n in keys.values())
    print(f"kill-and-resume: expected {N_IMAGES} / present {len(keys)} / duplicates {duplicates} "
          f"(killed after {before} rows, {time.monotonic() - t0:.1f} s)")
    assert duplicates == 0 and len(rows) == N_IMAGES
    assert [int(r["row"]) for r in rows] == list(range(1, N_IMAGES + 1))
    assert [i for i, r in enumerate(rows) if r["error"]] == [7, 31]
    assert len({r["batch_id"] for r in rows}) == 1

    log = CaseLog(home / "cases.sqlite")
    scored = {int(r["row"]) for r in rows if not r["error"]}
    logged = log.recent(10_000)
    assert len(logged) == log.count() == len(scored)              # one log row per scored case
    assert Counter(zip(logged["batch_id"], logged["row_index"])).most_common(1)[0][1] == 1
    assert log.batch_rows(rows[0]["batch_id"]) == scored
    print(f"case log: {len(logged)} rows for {len(scored)} scored cases, 0 repeated")
    assert time.monotonic() - t0 < 60
