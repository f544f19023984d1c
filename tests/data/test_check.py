import pytest

from harness.data.check import main
from tests.helpers import corpus_copy


def test_check_prints_summary_and_passes_on_a_fixture(capsys):
    assert main(["check", "iemocap"]) == 0
    out = capsys.readouterr().out
    assert "items: 26" in out
    assert "Neutral state" in out and "(tied)" in out
    assert "entropy (bits), 5 equal-width bins" in out
    assert "problems: 0" in out


def test_check_lists_every_problem_with_file_and_line(tmp_path, capsys):
    root = corpus_copy("iemocap", tmp_path)
    eval_file = root / "IEMOCAP_full_release/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    eval_file.write_text(eval_file.read_text().replace("[8.2250 - 9.8500]", "[8.2250 -", 1))
    (root / "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/"
            "Ses01F_impro01_F000.wav").write_text("not audio")
    assert main(["check", "iemocap", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems: 2" in out
    assert f"{eval_file}:21: malformed utterance header" in out
    assert "Ses01F_impro01_F000: unreadable" in out


def test_check_reports_a_bad_root(tmp_path, capsys):
    assert main(["check", "msp_podcast", str(tmp_path)]) == 2
    assert "not an MSP-Podcast root" in capsys.readouterr().err


def test_check_options_and_module_entry_point(capsys):
    assert main(["check", "msp_podcast", "--split", "Test1", "--no-audio"]) == 0
    assert "split 'Train' not selected" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["check", "nope"])


def test_any_corpus_option_is_taken_and_checked(capsys):
    assert main(["check", "iemocap", "--no-audio", "--option", "sessions=[2]"]) == 0
    assert "items: 8" in capsys.readouterr().out  # Session 2's, of the bundled 26
    assert main(["check", "iemocap", "--option", "sessions=x"]) == 2
    assert "iemocap option sessions takes a whole number" in capsys.readouterr().err
    assert main(["check", "iemocap", "--option", "sessions"]) == 2
    assert "--option 'sessions': expected NAME=VALUE" in capsys.readouterr().err


def test_a_corpus_of_one_s_own_is_checked_after_its_module_registers_it(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    crema_d = Path(__file__).parents[2] / "harness" / "embedded" / "crema_d"
    (tmp_path / "my_corpora.py").write_text(
        "from harness.data import register_corpus\n"
        "from harness.data.crema_d import load\n"
        "from harness.prompts import CorpusWording\n"
        "register_corpus('crema_copy', load, env_var='CREMA_COPY_ROOT',\n"
        "                wording=CorpusWording('An actor speaks.', 'the audio'))\n")

    def check(*args):
        return subprocess.run([sys.executable, "-m", "harness.data", "check", "crema_copy",
                               str(crema_d), "--no-audio", *args],
                              cwd=tmp_path, capture_output=True, text=True)

    done = check("--import", "my_corpora")
    assert done.returncode == 0 and "crema_copy: " in done.stdout and "items: 26" in done.stdout
    done = check()
    assert done.returncode == 2 and "invalid choice: 'crema_copy'" in done.stderr
    done = check("--import", "not_there")
    assert done.returncode == 2 and "--import: No module named 'not_there'" in done.stderr
    (tmp_path / "evals").mkdir()  # a corpus registered in a conftest.py alone: the file
    (tmp_path / "evals" / "conftest.py").write_text(
        "import pytest\n" + (tmp_path / "my_corpora.py").read_text())
    done = check("--import", "evals/conftest.py")
    assert done.returncode == 0 and "items: 26" in done.stdout, done.stderr
    done = check("--import", "evals/nothing.py")
    assert done.returncode == 2 and "--import: evals/nothing.py: no such file" in done.stderr
    (tmp_path / "broken.py").write_text("x = 1\nraise RuntimeError('my bug')\n")
    done = check("--import", "broken.py")
    assert done.returncode == 2 and "--import: RuntimeError: my bug (raised at " in done.stderr
    assert "broken.py:2)" in done.stderr and "Traceback" not in done.stderr


def test_clips_missing_everywhere_are_counted_by_kind_and_said_once(tmp_path, capsys):
    """A copy without its audio: the first clips of each kind, how many more, and what to look at
    (every one with --all)."""
    root = corpus_copy("crema_d", tmp_path)
    for clip in (root / "AudioWAV").iterdir():
        clip.unlink()
    assert main(["check", "crema_d", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems: 26" in out and out.count("audio file missing") == 11
    assert "... and 16 more clips: audio file missing (--all lists every one)" in out
    assert f"none of the 26 clips is there (looked for in {root / 'AudioWAV'}): is the audio " \
           "elsewhere? --no-audio checks the labels alone" in out
    assert main(["check", "crema_d", str(root), "--all"]) == 1
    assert capsys.readouterr().out.count(": audio file missing") == 26


def test_unreadable_clips_are_one_kind_whatever_each_ones_reason(tmp_path, capsys):
    """Clips unreadable for different reasons (not audio, a damaged header) are counted as one
    kind, not one kind a clip (each reason names its file)."""
    root = corpus_copy("crema_d", tmp_path)
    for n, clip in enumerate(sorted((root / "AudioWAV").iterdir())):
        damaged = bytearray(clip.read_bytes())
        damaged[20:22] = b"\x55\x55"  # the format code of the 'fmt ' chunk
        clip.write_bytes(b"not audio" if n % 2 else bytes(damaged))
    assert main(["check", "crema_d", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems: 26" in out and "Malformed 'fmt ' chunk" in out and "not recognised" in out
    assert out.count(": unreadable: ") == 10
    assert "... and 16 more clips: unreadable (--all lists every one)" in out


def test_a_directory_or_a_fifo_where_a_clip_should_be_is_said_so_never_opened(tmp_path, capsys):
    """Not "missing": a directory and a FIFO (which would block a reader) are named as such."""
    import os

    root = corpus_copy("crema_d", tmp_path)
    first, second = sorted((root / "AudioWAV").iterdir())[:2]
    first.unlink()
    first.mkdir()
    second.unlink()
    os.mkfifo(second)
    assert main(["check", "crema_d", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems: 2" in out and "missing" not in out
    assert f"{first.stem}: is a directory, not a regular file" in out
    assert f"{second.stem}: is a FIFO, not a regular file" in out
