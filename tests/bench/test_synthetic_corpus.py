"""``bench.synthetic_corpus``: a corpus written once under a work folder is reused, and one whose
writing stopped part-way is written again."""

from bench.synthetic_corpus import corpus_under


def test_a_whole_corpus_is_reused_and_a_partial_one_written_again(tmp_path, capsys):
    root = corpus_under(tmp_path, 3)
    assert root == tmp_path / "corpus-3" and (root / ".complete").is_file()
    assert len(list((root / "Audios").glob("*.wav"))) == 3
    assert "wrote 3 clips" in capsys.readouterr().out
    clip = root / "Audios" / "MSP-PODCAST_0000_0001.wav"
    clip.unlink()
    assert corpus_under(tmp_path, 3) == root and not clip.exists()  # the marker says whole
    assert capsys.readouterr().out == ""
    (root / ".complete").unlink()  # as a run stopped while writing leaves it
    corpus_under(tmp_path, 3)
    assert clip.is_file() and "wrote 3 clips" in capsys.readouterr().out
