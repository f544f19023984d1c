"""report.html's making, without a browser (``test_html_page.py`` opens it in one)."""

from urllib.parse import unquote, urljoin, urlparse

from harness.report.html import _relative_audio


def test_a_clips_path_reaches_it_from_the_report_whatever_its_characters(tmp_path):
    """A folder named ``take #2`` ended the clip's URL at ``#``; one named ``100%`` broke it."""
    clip = tmp_path / "take #2, 100% ?é" / "a.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"RIFF")
    run = tmp_path / "reports" / "run"
    run.mkdir(parents=True)
    src = _relative_audio({"audio": str(clip)}, run)["audio"]
    assert "#" not in src and "?" not in src and src.startswith("../../")
    assert unquote(urlparse(urljoin(run.as_uri() + "/", src)).path) == str(clip)  # as a browser
    assert _relative_audio({"audio": str(tmp_path / "gone.wav")}, run)["audio"] is None
