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


def test_some_clips_missing_are_listed_without_the_none_is_there_hint(tmp_path, capsys):
    root = corpus_copy("crema_d", tmp_path)
    gone = sorted((root / "AudioWAV").iterdir())[0]
    gone.unlink()
    assert main(["check", "crema_d", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems: 1" in out and f"{gone.stem}: audio file missing" in out
    assert "none of the" not in out


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


def _dataset(votes, labels=("a", "b"), name="mine", path=lambda n: f"/nowhere/c{n}.wav",
             ident=lambda n: f"i{n}"):
    from pathlib import Path

    from harness.data import Dataset, Item

    items = [Item(ident(n), Path(path(n)), "", v, labels) for n, v in enumerate(votes)]
    return Dataset(name, labels, items, Path("/nowhere"), skipped={"why not": 2, "another": 1})


def test_the_summary_counts_majorities_ties_soft_mass_and_entropy_bins():
    from harness.data.check import summary_lines

    # entropies 0, 1, 0 and 0.918 bits; soft mass a: 1 + 1/2 + 0 + 2/3, b: 0 + 1/2 + 1 + 1/3
    dataset = _dataset([[3, 0], [1, 1], [0, 2], [2, 1]])
    assert summary_lines(dataset) == [
        "mine: /nowhere",
        "items: 4",
        "  skipped 1: another",
        "  skipped 2: why not",
        "class            majority  soft mass",
        "  a                     2        2.2",
        "  b                     1        1.8",
        "  (tied)                1",
        "entropy (bits), 5 equal-width bins, median 0.459:",
        "  level 1 [0.00, 0.20)      2 " + "#" * 40,
        "  level 2 [0.20, 0.40)      0",
        "  level 3 [0.40, 0.60)      0",
        "  level 4 [0.60, 0.80)      0",
        "  level 5 [0.80, 1.00]      2 " + "#" * 40,
    ]
    bars = summary_lines(_dataset([[3, 0], [0, 2], [1, 1], [2, 1], [1, 2], [3, 0]]), n_bins=2)
    assert bars[-2:] == ["  level 1 [0.00, 0.50)      3 " + "#" * 40,
                         "  level 2 [0.50, 1.00]      3 " + "#" * 40]
    assert summary_lines(_dataset([[3, 0], [1, 1]]), n_bins=2)[-2:] == [
        "  level 1 [0.00, 0.50)      1 " + "#" * 40, "  level 2 [0.50, 1.00]      1 " + "#" * 40]
    assert summary_lines(_dataset([[3, 0], [0, 2], [1, 1], [2, 1]]), n_bins=4)[-4:] == [
        "  level 1 [0.00, 0.25)      2 " + "#" * 40, "  level 2 [0.25, 0.50)      0",
        "  level 3 [0.50, 0.75)      0", "  level 4 [0.75, 1.00]      2 " + "#" * 40]


def test_the_summary_of_an_empty_corpus_stops_at_its_count():
    from harness.data.check import summary_lines

    assert summary_lines(_dataset([])) == [
        "mine: /nowhere", "items: 0", "  skipped 1: another", "  skipped 2: why not"]


def test_a_clip_without_samples_is_a_problem(tmp_path, capsys):
    import soundfile as sf

    root = corpus_copy("crema_d", tmp_path)
    clip = sorted((root / "AudioWAV").iterdir())[0]
    sf.write(clip, [], 16000, subtype="PCM_16")
    assert main(["check", "crema_d", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems: 1" in out and f"{clip.stem}: no samples" in out


def test_clips_are_counted_by_kind_whatever_their_ids_say():
    """Ids with ': ' in them (a corpus of one's own) are still one kind; ten of a kind are all
    listed with no '... and 0 more'; more than three folders are cut short."""
    from harness.data.check import _clip_problem_lines, audio_problems

    def lines(n):
        dataset = _dataset([[1, 0]] * n, ident=lambda k: f"spk: {k}: take",
                           path=lambda k: f"/nowhere/f{k % 4}/c{k}.wav")
        return _clip_problem_lines(dataset, audio_problems(dataset), every=False)

    twelve = lines(12)
    assert len(twelve) == 12 and all(": take: audio file missing" in x for x in twelve[:10])
    assert twelve[10] == "... and 2 more clips: audio file missing (--all lists every one)"
    assert twelve[11].startswith("none of the 12 clips is there (looked for in /nowhere/f0, "
                                 "/nowhere/f1, /nowhere/f2, ...): is the audio elsewhere?")
    ten = lines(10)
    assert len(ten) == 11 and not any(x.startswith("...") for x in ten)
    assert lines(3)[-1].startswith("none of the 3 clips is there (looked for in /nowhere/f0, "
                                   "/nowhere/f1, /nowhere/f2): is")


def test_help_lists_the_check_options_and_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as done:
        main(["check", "--help"])
    assert done.value.code == 0
    assert "--no-audio" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2


def test_the_vote_options_reach_the_loader(capsys):
    assert main(["check", "iemocap", "--no-audio", "--vote-mode", "split"]) == 0
    split = capsys.readouterr().out
    assert "items: 26" in split and "  (tied)                5" in split
    assert "  Happiness             5        5.0" in split
    assert main(["check", "iemocap", "--no-audio", "--merge-excited"]) == 0
    merged = capsys.readouterr().out
    assert "items: 27" in merged and "consensus 'exc'" not in merged
