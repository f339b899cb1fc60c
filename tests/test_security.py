"""Security controls of SECURITY.md that need no model: deployment defaults, server folders for
batches, literal rendering of user text, upload limits."""
from __future__ import annotations

import io
import os
import re
import tomllib
import zipfile

import pytest

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.present.text_safe import md_escape, md_list, plain
from pneumo.service import uploads
from pneumo.service.server_roots import REFUSAL, ServerPathError, allowed_roots, enabled, resolve_manifest

REPO = config.REPO_ROOT


# --- deployment defaults ------------------------------------------------------------------

def test_streamlit_listens_locally_and_hides_tracebacks():
    conf = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert conf["server"]["address"] == "127.0.0.1"
    assert conf["server"]["maxUploadSize"] <= 200
    assert conf["client"]["showErrorDetails"] == "none"
    assert conf["browser"]["gatherUsageStats"] is False
    # a watched file change evicts pneumo.* from sys.modules while the model loads (CI, once)
    assert conf["server"]["fileWatcherType"] == "none"


def test_make_run_binds_to_the_address_setting():
    make = (REPO / "Makefile").read_text()
    assert re.search(r"^ADDRESS\s*\?=\s*127\.0\.0\.1\s*$", make, re.M)
    run = make[make.index("\nrun:"):].split("\n\n")[0]
    assert "--server.address $(ADDRESS)" in run


# --- md_escape ----------------------------------------------------------------------------

def _render(text: str) -> str:
    import markdown_it
    md = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return md.render(text)


@pytest.mark.parametrize("hostile", [
    "[sign in](http://evil)",
    "![x](http://evil/t.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "**bold** _it_ `code` ~~gone~~",
    "# heading",
    "1. list",
    "- item",
    "> quote",
    "| a | b |",
    "[ref]: http://evil",
    "<http://evil>",
])
def test_md_escape_renders_literally(hostile):
    html = _render(md_escape(hostile))
    assert "<a" not in html and "<img" not in html and "<script" not in html
    assert "<strong>" not in html and "<em>" not in html and "<code>" not in html and "<h1>" not in html
    assert "<ol>" not in html and "<ul>" not in html and "<blockquote>" not in html and "<table>" not in html
    # what is shown is the text itself (HTML entities decoded)
    shown = re.sub(r"</?p>\n?", "", html).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&quot;", '"').replace("&amp;", "&").strip()
    assert shown == hostile


def test_md_escape_streamlit_extras_and_control_characters():
    out = md_escape("$x^2$ :red[alarm] :material/warning: a\x00b\x1b[31m\u202ec\nnext\r\nline")
    for token in ("$", ":", "[", "]"):
        assert all(out[i - 1] == "\\" for i, ch in enumerate(out) if ch == token)
    assert "\x00" not in out and "\x1b" not in out and "\u202e" not in out and "\n" not in out
    assert "next line" in out


def test_md_escape_caps_length_and_accepts_anything():
    assert len(plain("x" * 10_000)) == 300 and plain("x" * 10_000).endswith("…")
    assert md_escape(None) == "" and md_escape(12.5) == "12\\.5"
    assert md_list(["a", "b", "c"], limit=2) == "a, b and 1 more"


# --- batch folders on the server ----------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "study").mkdir(parents=True)
    (allowed / "study" / "manifest.csv").write_text("image_path\na.png\n")
    (allowed / "notes.txt").write_text("x")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "patients.csv").write_text("image_path,name\na.png,Jane Doe\n")
    (allowed / "link.csv").symlink_to(secret / "patients.csv")
    (allowed / "linkdir").symlink_to(secret, target_is_directory=True)
    return allowed, secret


def test_mode_off_without_the_setting(monkeypatch, tree):
    monkeypatch.delenv("PNEUMO_BATCH_ROOTS", raising=False)
    assert allowed_roots() == [] and not enabled()
    with pytest.raises(ServerPathError):
        resolve_manifest(str(tree[0] / "study" / "manifest.csv"))


def test_roots_setting_parsed(monkeypatch, tree, tmp_path):
    allowed, secret = tree
    value = os.pathsep.join([str(allowed), "", "relative/dir", str(tmp_path / "missing"), str(allowed)])
    monkeypatch.setenv("PNEUMO_BATCH_ROOTS", value)
    assert allowed_roots() == [allowed.resolve()] and enabled()


def test_manifest_inside_a_root_is_given(tree):
    allowed, _ = tree
    want = (allowed / "study" / "manifest.csv").resolve()
    assert resolve_manifest(str(allowed / "study" / "manifest.csv"), [allowed]) == want
    assert resolve_manifest("study/manifest.csv", [allowed]) == want
    assert resolve_manifest(f"{allowed}/study/../study/manifest.csv", [allowed]) == want


def test_one_refusal_for_everything_else(tree):
    allowed, secret = tree
    attempts = [
        str(secret / "patients.csv"),                    # exists, outside
        str(secret / "nothing.csv"),                     # does not exist, outside
        "/etc/passwd", "/", "",
        f"{allowed}/../secret/patients.csv",             # climbs out
        "../secret/patients.csv",
        str(allowed / "link.csv"),                       # a symlink inside pointing outside
        str(allowed / "linkdir" / "patients.csv"),
        str(allowed / "study" / "missing.csv"),          # inside but absent
        str(allowed / "study"),                          # a folder
        str(allowed / "notes.txt"),                      # not a CSV
        str(allowed) + "/study/manifest.csv\x00.png",    # NUL
        "x" * 5000,
    ]
    messages = set()
    for path in attempts:
        with pytest.raises(ServerPathError) as err:
            resolve_manifest(path, [allowed])
        messages.add(str(err.value))
    assert messages == {REFUSAL}
    assert isinstance(ServerPathError(), PneumoError)


def test_prefix_sibling_is_not_inside(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    sibling = tmp_path / "data-private"
    sibling.mkdir()
    (sibling / "m.csv").write_text("image_path\n")
    with pytest.raises(ServerPathError):
        resolve_manifest(str(sibling / "m.csv"), [root])


def test_batch_page_only_calls_the_library():
    page = (REPO / "pages" / "ui" / "batch_run.py").read_text()
    assert "resolve_manifest" in page and "server_roots" in page
    assert ".is_file()" not in page and ".exists()" not in page and "expanduser" not in page


# --- uploads ------------------------------------------------------------------------------

def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_not_a_zip_is_one_line(tmp_path):
    with pytest.raises(uploads.UploadError, match="not a readable zip"):
        uploads.extract_zip(b"PK\x03\x04 definitely not", tmp_path, name="films.zip")
    out = uploads.unpack_uploads([("films.zip", b"hello"), ("a.png", b"A")], tmp_path)
    assert out.problems == ["films.zip is not a readable zip archive"] and out.files == 1
    assert (tmp_path / "a.png").read_bytes() == b"A"


def test_bad_crc_is_one_line_and_keeps_earlier_members(tmp_path):
    data = bytearray(_zip({"a.png": b"A" * 100, "b.png": b"B" * 100}, zipfile.ZIP_STORED))
    data[data.rindex(b"B" * 100)] ^= 0xFF                # corrupt b.png's stored bytes
    with pytest.raises(uploads.UploadError, match="b.png.*bad CRC"):
        uploads.extract_zip(bytes(data), tmp_path, name="x.zip")
    assert (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_too_many_entries_and_long_names(tmp_path):
    many = _zip({f"f{i}.png": b"x" for i in range(30)})
    with pytest.raises(uploads.UploadError, match="30 entries; at most 20"):
        uploads.extract_zip(many, tmp_path, max_entries=20)
    with pytest.raises(uploads.UploadError, match="longer than 255 bytes"):
        uploads.extract_zip(_zip({"é" * 128 + ".png": b"x"}), tmp_path)
    assert list(tmp_path.iterdir()) == []
    # the entry budget is shared by every zip of one upload
    out = uploads.unpack_uploads([("a.zip", _zip({f"a{i}": b"x" for i in range(15)})),
                              ("b.zip", _zip({f"b{i}": b"x" for i in range(15)}))], tmp_path, max_entries=20)
    assert out.files == 15 and len(out.problems) == 1 and "b.zip" in out.problems[0]


def test_inflated_size_limit_is_checked_before_writing(tmp_path):
    bomb = _zip({"big.png": b"\0" * 5_000_000})
    assert len(bomb) < 50_000
    with pytest.raises(uploads.UploadError, match="inflates to more than"):
        uploads.extract_zip(bomb, tmp_path, max_bytes=1_000_000)
    assert list(tmp_path.iterdir()) == []
    out = uploads.unpack_uploads([("a.png", b"1" * 600), ("b.png", b"2" * 600)], tmp_path, max_bytes=1000)
    assert out.files == 1 and "b.png" in out.problems[0]


def test_too_many_files_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_MAX_UPLOAD_FILES", "3")
    out = uploads.unpack_uploads([(f"{i}.png", b"x") for i in range(4)], tmp_path)
    assert out.files == 0 and "at most 3" in out.problems[0] and list(tmp_path.iterdir()) == []
    monkeypatch.setenv("PNEUMO_MAX_UPLOAD_FILES", "nonsense")
    assert config.max_upload_files() == 1000


def test_save_uploads_raises_a_typed_error(tmp_path):
    with pytest.raises(uploads.UploadError):
        uploads.save_uploads([("x.zip", b"nope")], tmp_path)
    assert uploads.save_uploads([("../../x.png", b"1")], tmp_path) == []


# --- the Batch page (AppTest on the page alone, as tests/test_app.py does) ----------------

def _batch_page(monkeypatch, tmp_path):
    import streamlit.testing.v1 as st_testing
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PNEUMO_MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.delenv("PNEUMO_USERS_FILE", raising=False)
    at = st_testing.AppTest.from_file(str(REPO / "pages" / "batch.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_batch_page_offers_no_server_folder_without_the_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("PNEUMO_BATCH_ROOTS", raising=False)
    at = _batch_page(monkeypatch, tmp_path)
    assert len(at.radio) == 0 and len(at.text_input) == 0
    assert "A folder on this server" not in str(at)


def test_batch_page_refuses_outside_paths_with_one_line(monkeypatch, tmp_path, tree):
    allowed, secret = tree
    monkeypatch.setenv("PNEUMO_BATCH_ROOTS", str(allowed))
    at = _batch_page(monkeypatch, tmp_path)
    at.radio[0].set_value("A folder on this server").run()
    seen = []
    for path in (str(secret / "patients.csv"), str(secret / "nothing.csv"), "/etc/passwd",
                 str(allowed / "link.csv")):
        at.text_input[0].input(path).run()
        at.button(key="batch_go").click().run()
        assert not at.exception, at.exception
        seen.append([e.value for e in at.error])
    assert all(errors == [md_escape(REFUSAL)] for errors in seen), seen


def test_batch_page_escapes_member_names_and_keeps_going(monkeypatch, tmp_path):
    monkeypatch.delenv("PNEUMO_BATCH_ROOTS", raising=False)
    at = _batch_page(monkeypatch, tmp_path)
    evil = "../[sign in](http://evil)![x](http://evil/t.png).png"
    at.file_uploader(key="batch_manifest").upload("manifest.csv", b"image_path\na.png\n", "text/csv")
    at.file_uploader(key="batch_images").upload("i.zip", _zip({evil: b"x", "a.png": b"A"}), "application/zip")
    at.run()
    at.button(key="batch_go").click().run()
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "unsafe paths" in warning and md_escape(evil, 120) in warning
    html = _render(warning)
    assert "<a" not in html and "<img" not in html


def test_batch_page_bad_zip_is_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("PNEUMO_BATCH_ROOTS", raising=False)
    at = _batch_page(monkeypatch, tmp_path)
    at.file_uploader(key="batch_manifest").upload("manifest.csv", b"image_path\na.png\n", "text/csv")
    at.file_uploader(key="batch_images").upload("[x](http://e).zip", b"not a zip", "application/zip")
    at.run()
    at.button(key="batch_go").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [md_escape("e_.zip is not a readable zip archive")]
