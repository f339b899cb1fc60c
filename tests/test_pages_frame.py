"""pages/ui/frame.require_frame leans on one private Streamlit flag; these fail if an upgrade moves it."""
import pytest
from streamlit.runtime.pages_manager import PagesManager

from pages.ui import frame as common


def test_the_private_flag_still_exists():
    assert isinstance(PagesManager.uses_pages_directory, (bool, type(None)))


def test_a_v1_start_is_switched_to_the_frame_and_rerun(monkeypatch):
    reruns = []
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    monkeypatch.setattr(common.st, "rerun", lambda: reruns.append(1))
    common.require_frame()
    assert PagesManager.uses_pages_directory is False and reruns == [1]


def test_a_frame_start_is_left_alone(monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", False)
    monkeypatch.setattr(common.st, "rerun", lambda: pytest.fail("no rerun expected"))
    common.require_frame()
