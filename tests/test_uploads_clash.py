"""Issue 28: an archive whose members make a file and a folder of one name (`a` and `a/b.dcm`, in
either order, or a zip folder and a loose file of one upload) is refused with one line
(UploadError), never an OSError escaping to the page."""
from __future__ import annotations

import io
import zipfile

import pytest

from pneumo.service import uploads


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("members", [
    [("a", b"x"), ("a/b.dcm", b"y")],               # a file, then a member under it
    [("a/b.dcm", b"y"), ("a", b"x")],               # a folder, then a file of its name
    [("d/a", b"x"), ("d/a/deeper/b.dcm", b"y")],    # the file two levels up
])
def test_file_and_folder_of_one_name_is_one_line(tmp_path, members):
    with pytest.raises(uploads.UploadError) as err:
        uploads.extract_zip(_zip(members), tmp_path)
    assert "clashes" in str(err.value) and "\n" not in str(err.value)
    out = uploads.unpack_uploads([("films.zip", _zip(members))], tmp_path / "second")
    assert len(out.problems) == 1 and "clashes" in out.problems[0]
    with pytest.raises(uploads.UploadError):
        uploads.save_uploads([("films.zip", _zip(members))], tmp_path / "third")


def test_a_loose_file_named_like_an_archive_folder_is_one_line(tmp_path):
    out = uploads.unpack_uploads([("films.zip", _zip([("a/b.dcm", b"y")])), ("a", b"x")], tmp_path)
    assert out.files == 1 and len(out.problems) == 1 and "clashes" in out.problems[0]
