"""The case log: round trip, WAL, schema version, no identifiers, concurrent writers."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.service.case_log import SCHEMA_VERSION, CaseLog, LogEntry

DIGEST = "ab" * 32


@dataclass
class FakeResult:
    """The Result attributes the log reads (duck typing: pneumo.inference.predictor.Result has these)."""
    probability: float = 0.73
    label: str = "PNEUMONIA"
    threshold: float = 0.5
    band: str = "clear"
    modalities: dict = field(default_factory=lambda: {"image": True, "labs": True})
    modality_contribution: dict = field(default_factory=lambda: {"image": 0.2, "labs": 0.03})
    imputed: list = field(default_factory=list)
    out_of_range: list = field(default_factory=list)
    validity: str = "accept"
    warnings: list = field(default_factory=list)
    model: dict = field(default_factory=lambda: {"name": "pneumo-fusion", "version": "1.0.0",
                                                 "weights_sha256": "cd" * 32})
    image_digest: str | None = DIGEST
    intended_use: str = "within"


def test_round_trip(tmp_path):
    log = CaseLog(tmp_path / "cases.sqlite")
    row_id = log.record(FakeResult(warnings=["labs missing: crp"]), labs={"wbc": 14.2, "crp": None},
                        origin="app")
    assert row_id == 1 and log.count() == 1
    rec = log.recent().iloc[0]
    assert rec["probability"] == pytest.approx(0.73) and rec["label"] == "PNEUMONIA"
    assert rec["threshold"] == 0.5 and rec["band"] == "clear" and rec["validity"] == "accept"
    assert rec["labs"] == {"wbc": 14.2, "crp": None}
    assert rec["warnings"] == ["labs missing: crp"]
    assert rec["contribution"] == {"image": 0.2, "labs": 0.03}
    assert rec["model_name"] == "pneumo-fusion" and rec["model_version"] == "1.0.0"
    assert rec["weights_sha256"] == "cd" * 32 and rec["image_digest"] == DIGEST
    assert rec["origin"] == "app" and rec["time"].endswith("Z") and "T" in rec["time"]


def test_dict_result_and_lab_reading(tmp_path):
    class Reading:                        # a LabReading look-alike: only .values is read
        values = {"wbc": 9.0, "crp": 12.0}
    log = CaseLog(tmp_path / "c.sqlite")
    log.record({"probability": 0.2, "label": "NORMAL", "threshold": 0.5, "image_digest": None},
               labs=Reading(), origin="cli")
    rec = log.recent().iloc[0]
    assert rec["labs"] == {"crp": 12.0, "wbc": 9.0} and rec["image_digest"] is None


def test_wal_and_schema_version(tmp_path):
    path = tmp_path / "cases.sqlite"
    CaseLog(path).record(FakeResult(), labs={}, origin="cli")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(PneumoError, match="newer pneumo"):
        CaseLog(path)


def test_default_path_under_pneumo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    log = CaseLog()
    assert log.path == tmp_path / "home" / "cases.sqlite" and log.path.exists()


def test_bad_input_is_refused(tmp_path):
    log = CaseLog(tmp_path / "c.sqlite")
    with pytest.raises(PneumoError, match="origin"):
        log.record(FakeResult(), labs={}, origin="web")
    with pytest.raises(PneumoError, match="sha256"):   # a file name in the digest slot never gets in
        log.record(FakeResult(image_digest="DOE_JANE.dcm"), labs={}, origin="app")
    with pytest.raises(PneumoError, match="probability"):
        log.record(FakeResult(probability=None), labs={}, origin="app")
    assert log.count() == 0


def test_batch_row_recorded_twice_is_one_row(tmp_path):
    log = CaseLog(tmp_path / "c.sqlite")
    log.record_many([LogEntry(FakeResult(probability=0.1), {}, "batch", "b1", 7),
                     LogEntry(FakeResult(probability=0.2), {}, "batch", "b1", 8)])
    log.record(FakeResult(probability=0.9), labs={}, origin="batch", batch_id="b1", row_index=7)
    assert log.count() == 2 and log.count(batch_id="b1") == 2 and log.batch_rows("b1") == {7, 8}
    assert sorted(log.recent()["probability"]) == [0.2, 0.9]


def test_export_csv_is_formula_safe(tmp_path):
    log = CaseLog(tmp_path / "c.sqlite")
    log.record(FakeResult(band="=HYPERLINK(\"http://x\")"), labs={}, origin="app")
    out = tmp_path / "log.csv"
    assert log.export_csv(out) == 1
    text = out.read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text


def _dicom_with_identifiers(path: Path) -> None:
    from pneumo.qa.hostile_bytes import dicom_bytes

    path.write_bytes(dicom_bytes(128, 128, PatientName="DOE^JANE", PatientID="MRN55501234",
                                 PatientBirthDate="19450317", AccessionNumber="ACC77889911"))


def test_no_identifier_ever_reaches_the_db(tmp_path):
    from pneumo.data.imaging import pixel_digest, read_image

    secrets = ["DOE^JANE", "DOE_JANE", "MRN55501234", "55501234", "19450317", "ACC77889911",
               "DOE_JANE_MRN55501234.dcm", "scans"]
    dcm = tmp_path / "scans" / "DOE_JANE_MRN55501234.dcm"
    dcm.parent.mkdir()
    _dicom_with_identifiers(dcm)
    xray = read_image(dcm)
    result = FakeResult(image_digest=pixel_digest(xray.pixels),
                        warnings=[f"could not read {dcm}", "film DOE_JANE_MRN55501234.dcm is rotated"])
    result.case_id, result.source, result.meta = "ACC77889911", str(dcm), xray.meta  # extra attributes: ignored
    labs = {"wbc": 12.5, "patient_name": "DOE^JANE", "patient_id": "MRN55501234", "mrn": 55501234,
            "birth_date": "19450317", "accession": "ACC77889911", "file": str(dcm), "path": dcm.name,
            "crp": "DOE^JANE"}
    home = tmp_path / "home"
    log = CaseLog(home / "cases.sqlite")
    log.record(result, labs=labs, origin="app")
    log.record(result, labs=labs, origin="batch", batch_id="b", row_index=1)
    log.export_csv(home / "export.csv")
    blob = b"".join(p.read_bytes() for p in home.iterdir())   # the DB, its WAL and shm, the export
    assert blob.count(result.image_digest.encode()) >= 2
    for secret in secrets:
        assert secret.encode() not in blob, f"{secret!r} leaked into the case log"
    assert log.recent().iloc[0]["labs"] == {"wbc": 12.5}


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pneumo.service.case_log import CaseLog
    db, go, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    log = CaseLog(db)
    (go.parent / "ready").touch()
    while not go.exists():
        time.sleep(0.005)
    for i in range(n):
        log.record({"probability": i / n, "label": "NORMAL", "threshold": 0.5, "image_digest": None},
                   labs={"wbc": float(i)}, origin="batch", batch_id="proc", row_index=i)
""")


def test_concurrent_writers_lose_no_row(tmp_path):
    n = 200
    db, go = tmp_path / "cases.sqlite", tmp_path / "go"
    log = CaseLog(db)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(config.REPO_ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(go), str(n)], env=env)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "writer process did not start"
        time.sleep(0.01)
    errors: list[BaseException] = []

    def session(name: str) -> None:       # like one app session: its own CaseLog, one write per case
        try:
            mine = CaseLog(db)
            for i in range(n):
                mine.record(FakeResult(probability=i / n), labs={"wbc": float(i)}, origin="app")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=session, args=(f"s{k}",)) for k in range(2)]
    t0 = time.monotonic()
    go.touch()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(timeout=60) == 0
    seconds = time.monotonic() - t0
    assert not errors, errors
    frame = log.recent(10_000)
    assert len(frame) == 3 * n == log.count()
    assert frame["id"].is_unique
    assert (frame["origin"] == "app").sum() == 2 * n and log.batch_rows("proc") == set(range(n))
    print(f"concurrent writers: 2 threads + 1 process x {n} rows -> {len(frame)} rows in {seconds:.2f} s "
          f"({len(frame) / seconds:.0f} rows/s), 0 lost")


def test_warnings_lose_paths_but_keep_units():
    from pneumo.service.case_log import clean_warnings

    assert clean_warnings(["wbc 14.2 10*3/uL above range", "eGFR 50 mL/min/1.73m2"]) == \
        ["wbc 14.2 10*3/uL above range", "eGFR 50 mL/min/1.73m2"]
    assert clean_warnings(["could not read /srv/pacs/DOE.dcm", r"C:\scans\x.png", "film a_b.DCM rotated"]) == \
        ["could not read <file>", "<file>", "film <file> rotated"]


# --- the user column, migration, retention, permissions (SECURITY.md) --------------------

def _v1_log(path: Path) -> None:
    """A log as pneumo wrote it before the user column (schema 1), with one row."""
    from pneumo.service.case_log import _SCHEMA_V1

    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_V1)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO cases (time, origin, labs, probability, label, warnings) "
                     "VALUES ('2020-01-01T00:00:00.000Z', 'cli', '{}', 0.4, 'NORMAL', '[]')")


def test_schema_1_log_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    _v1_log(path)
    log = CaseLog(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert "user" in [r[1] for r in conn.execute("PRAGMA table_info(cases)")]
        assert "cases_user" in [r[1] for r in conn.execute("PRAGMA index_list(cases)")]
    old = log.recent().iloc[0]
    assert old["probability"] == pytest.approx(0.4) and old["user"] is None
    log.record(FakeResult(), labs={}, origin="app", user="alice")
    assert log.count() == 2 and CaseLog(path).recent()["user"].tolist() == ["alice", None]


def test_user_is_recorded_and_filtered(tmp_path):
    path = tmp_path / "c.sqlite"
    CaseLog(path).record(FakeResult(), labs={}, origin="app")                       # no sign-in
    alice = CaseLog(path, user="alice")
    alice.record(FakeResult(), labs={}, origin="app")
    alice.record_many([LogEntry(FakeResult(), {}, "batch", "b", 0), LogEntry(FakeResult(), {}, "batch", "b", 1)])
    alice.record(FakeResult(), labs={}, origin="app", user="bob@ward-3")           # a call may name another
    log = CaseLog(path)
    assert log.recent()["user"].tolist() == ["bob@ward-3", "alice", "alice", "alice", None]
    assert len(log.recent(user="alice")) == 3 and len(log.recent(user="bob@ward-3")) == 1
    assert log.recent(user="carol").empty
    for bad in ("a b", "x" * 65, "<script>", "'; DROP TABLE cases; --", 7):
        with pytest.raises(PneumoError, match="user name"):
            log.record(FakeResult(), labs={}, origin="app", user=bad)
    assert log.count() == 5


def _backdate(path: Path, row_id: int, stamp: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE cases SET time = ? WHERE id = ?", (stamp, row_id))


def test_purge_before_removes_older_rows(tmp_path):
    import datetime as dt

    path = tmp_path / "c.sqlite"
    log = CaseLog(path)
    ids = [log.record(FakeResult(), labs={}, origin="app") for _ in range(4)]
    _backdate(path, ids[0], "2023-12-31T23:59:59.999Z")
    _backdate(path, ids[1], "2024-01-01T00:00:00.000Z")
    _backdate(path, ids[2], "2024-06-01T12:00:00.000Z")
    assert log.purge_before("2024-01-01") == 1
    assert log.purge_before(dt.date(2024, 1, 1)) == 0
    assert log.purge_before(dt.datetime(2024, 6, 2, tzinfo=dt.timezone.utc)) == 2
    assert log.count() == 1 and log.recent()["id"].tolist() == [ids[3]]
    with pytest.raises(PneumoError, match="YYYY-MM-DD"):
        log.purge_before("last tuesday")


def test_retention_days_applied_on_open(tmp_path, monkeypatch):
    import datetime as dt

    path = tmp_path / "c.sqlite"
    log = CaseLog(path)
    old, new = (log.record(FakeResult(), labs={}, origin="app") for _ in range(2))
    stamp = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)).isoformat(timespec="milliseconds")
    _backdate(path, old, stamp.replace("+00:00", "Z"))
    monkeypatch.setenv("PNEUMO_RETENTION_DAYS", "45")
    assert CaseLog(path).count() == 2
    monkeypatch.setenv("PNEUMO_RETENTION_DAYS", "30")
    assert CaseLog(path).recent()["id"].tolist() == [new]
    monkeypatch.setenv("PNEUMO_RETENTION_DAYS", "forever")    # malformed: keeps everything
    assert config.retention_days() is None and CaseLog(path).count() == 1


def test_purge_command_line(tmp_path):
    path = tmp_path / "c.sqlite"
    log = CaseLog(path)
    log.record(FakeResult(), labs={}, origin="app")
    _backdate(path, 1, "2020-05-05T00:00:00.000Z")
    log.record(FakeResult(), labs={}, origin="app")
    env = {**os.environ, "PYTHONPATH": str(config.REPO_ROOT)}
    run = subprocess.run([sys.executable, "-m", "pneumo", "history", "--purge-before", "2021-01-01", "--log", str(path)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0 and "removed 1 case(s) logged before 2021-01-01" in run.stdout
    from pneumo.cli.main import main
    assert main(["history", "--purge-before", "2021-13-45", "--log", str(path)]) == 2
    assert log.count() == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_log_files_are_private(tmp_path):
    path = tmp_path / "c.sqlite"
    old = os.umask(0o022)
    try:
        CaseLog(path).record(FakeResult(), labs={}, origin="app")
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if p.exists():
                assert p.stat().st_mode & 0o777 == 0o600, p
        path.chmod(0o644)                       # a log left readable by an older pneumo is tightened
        CaseLog(path)
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_refused_cases_are_logged_with_their_reason_only(tmp_path):
    log = CaseLog(tmp_path / "cases.sqlite")
    log.record(FakeResult(), labs={"wbc": 12.0}, origin="app")
    log.record_refusal("image refused: /home/x/scan.dcm is almost blank", origin="app")
    frame = log.recent(10)
    assert list(frame["outcome"]) == ["refused", "scored"]
    refused = frame.iloc[0]
    assert refused["warnings"] == ["image refused: <file> is almost blank"]   # no file name kept
    assert log.purge_before("2999-01-01") == 2 and log.recent(10).empty


def test_intended_use_and_inputs_are_logged(tmp_path):
    log = CaseLog(tmp_path / "cases.sqlite")
    log.record(FakeResult(), labs={}, origin="cli")
    with sqlite3.connect(tmp_path / "cases.sqlite") as conn:
        row = conn.execute("SELECT intended_use, inputs FROM cases").fetchone()
    assert row == (FakeResult().intended_use, "film and labs")


# --- schema 5: 'dicom-node' is an origin of its own -------------------------------------------

def _v4_log(path) -> None:
    """A log as pneumo wrote it at schema 4: the DICOM node's cases under origin 'batch'."""
    from pneumo.service.case_log import _MIGRATIONS

    with sqlite3.connect(path) as conn:
        for step in range(4):
            conn.executescript(_MIGRATIONS[step])
        conn.execute("PRAGMA user_version = 4")
        for origin, batch, row in (("app", None, None), ("batch", "dicom-node-0123456789ab", 1),
                                   ("batch", "b1", 1), ("cli", None, None)):
            conn.execute("INSERT INTO cases (time, origin, labs, probability, label, threshold, warnings, batch_id, "
                         "row_index, intended_use, outside_allowed) VALUES ('2026-01-01T00:00:00.000Z', ?, '{}', 0.7, "
                         "'PNEUMONIA', 0.5, '[]', ?, ?, 'within', 0)", (origin, batch, row))
        conn.execute("DELETE FROM cases WHERE origin = 'app'")          # a gap in the ids is kept too
        conn.execute("INSERT INTO refusals (time, origin, reason) VALUES ('2026-01-01T00:00:00.000Z', 'batch', 'x')")


def test_a_schema_4_log_is_migrated_and_the_node_rows_get_their_origin(tmp_path):
    path = tmp_path / "v4.sqlite"
    _v4_log(path)
    log = CaseLog(path, retention_days=0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        rows = conn.execute("SELECT id, origin, batch_id FROM cases ORDER BY id").fetchall()
        assert rows == [(2, "dicom-node", "dicom-node-0123456789ab"), (3, "batch", "b1"), (4, "cli", None)]
        assert {"cases_batch_row", "cases_time", "cases_user"} <= {r[1] for r in conn.execute("PRAGMA index_list(cases)")}
        assert conn.execute("SELECT origin FROM refusals").fetchall() == [("batch",)]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO cases (time, origin, labs, probability, label, warnings) "
                         "VALUES ('t', 'nowhere', '{}', 0.1, '', '[]')")
    new = log.record(FakeResult(), labs={}, origin="dicom-node", batch_id="dicom-node-x", row_index=1)
    assert new == 5                                   # AUTOINCREMENT carries on after the rebuild
    log.record_refusal("not a chest film", origin="dicom-node")
    assert set(log.recent()["origin"]) == {"dicom-node", "batch", "cli"}
    with pytest.raises(Exception, match="origin"):
        log.record(FakeResult(), labs={}, origin="nowhere")
    CaseLog(path, retention_days=0)                   # opening again changes nothing
    assert CaseLog(path).count() == 4


def test_update_replaces_a_cases_answer_in_its_row(tmp_path):
    log = CaseLog(tmp_path / "c.sqlite", user="alice")
    row = log.record(FakeResult(probability=0.3), labs={"wbc": 7.0}, origin="app")
    log.update(row, FakeResult(probability=0.8), labs={"wbc": 19.0})
    got = log.recent()
    assert len(got) == 1 and got["probability"].iloc[0] == pytest.approx(0.8)
    assert got["labs"].iloc[0]["wbc"] == 19.0 and got["user"].iloc[0] == "alice" and got["origin"].iloc[0] == "app"
