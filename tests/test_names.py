"""An unknown name is said one way everywhere, with the closest known names (harness._names), and
the embedded default is found on disk or refused with a reason (harness._embedded)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import harness._embedded as embedded
from harness._names import unknown_name


def test_the_closest_names_are_offered_case_ignored_in_the_known_names_spelling():
    message = unknown_name("metric", "JS", ["js", "bc", "r2"])
    assert message == "unknown metric 'JS'; did you mean 'js'? (known: js, bc, r2)"


def test_up_to_three_close_names_are_offered_closest_first():
    """Four are close to 'beam' ('beamz', 'beams', 'seam', 'bear', in that order): three are
    offered."""
    known = ["beams", "beam_width", "beamz", "bear", "seam", "alpha"]
    message = unknown_name("strategy argument", "beam", known)
    assert message == ("unknown strategy argument 'beam'; did you mean 'beamz' or 'beams' or 'seam'? "
                       "(known: beams, beam_width, beamz, bear, seam, alpha)")


def test_a_name_like_none_of_them_gets_no_hint():
    assert unknown_name("model", "zzz", ["gpt-4o", "qwen2-audio-7b"]) == (
        "unknown model 'zzz' (known: gpt-4o, qwen2-audio-7b)")


def test_a_name_only_somewhat_like_one_is_not_offered():
    """difflib's ratio 0.6 is the line: 'abcd' against 'abxy' (0.5) is not a suggestion, against
    'abcx' (0.75) it is."""
    assert "did you mean" not in unknown_name("corpus", "abcd", ["abxy"])
    assert "did you mean 'abcx'" in unknown_name("corpus", "abcd", ["abcx"])


def test_a_name_that_is_not_a_string_is_named_as_given():
    assert unknown_name("level", 3, ["low", "high"]) == "unknown level 3 (known: low, high)"


def test_the_embedded_default_is_a_folder_on_disk():
    path = embedded.embedded_path("tiny_qwen2_audio")
    assert isinstance(path, Path) and path.is_dir()
    assert embedded.embedded_path() == path.parent


def test_a_zipped_install_is_refused_with_the_reason(tmp_path, monkeypatch):
    archive = tmp_path / "harness.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("harness/embedded/x.txt", "x")
    monkeypatch.setattr(embedded, "files", lambda package: zipfile.Path(archive, "harness/"))
    with pytest.raises(FileNotFoundError, match="embedded data is not on disk.*install the package"):
        embedded.embedded_path("x.txt")
