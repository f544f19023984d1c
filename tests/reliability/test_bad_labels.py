"""Bad label files: each damage gives a recorded problem (file and line) or a DataError naming
the file; good items still load; fuzzed EmoEvaluation and EmoDetail text never raises anything
else."""

import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.data import DataError, load_dataset
from harness.data import iemocap as iemocap_loader
from harness.data import msp_podcast as msp_loader
from harness.data.problems import ProblemLog
from tests.helpers import corpus_copy

EVAL = "IEMOCAP_full_release/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def raw(path: Path, transform) -> None:
    path.write_bytes(transform(path.read_bytes()))


DAMAGES = [  # (corpus, file, how, expect "problem" or "error")
    ("iemocap", EVAL, lambda p: edit(p, "[3.0000 - 4.7500]", "[3.0000 4.7500"), "problem"),
    ("iemocap", EVAL, lambda p: edit(p, "Ses01F_impro01_F002\tang", "Ses01F_impro01_F001\tang"), "problem"),
    ("iemocap", EVAL, lambda p: edit(p, "C-E2:\tNeutral;\t()", "C-E2:\t;\t()"), "problem"),
    ("iemocap", EVAL, lambda p: edit(p, "C-E2:\tSadness;\t()\nC-E3:\tSadness;\t()\nC-E4:\tNeutral;",
                                     "C-E2:\tFear;\t()\nC-E3:\tFear;\t()\nC-E4:\tOther;"), "problem"),
    ("iemocap", EVAL, lambda p: raw(p, lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")), "clean"),
    ("iemocap", EVAL, lambda p: raw(p, lambda b: b.replace(b"(self)", b"(\xff\xfe)")), "problem"),
    ("msp_podcast", "Labels/labels_consensus.csv",
     lambda p: edit(p, ",Split_Set", ",Partition"), "error"),
    ("msp_podcast", "Labels/labels_consensus.csv",
     lambda p: raw(p, lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")), "clean"),
    ("msp_podcast", "Labels/labels_detailed.csv",
     lambda p: edit(p, "WORKER00010; Neutral;", "garbage"), "problem"),
    ("msp_podcast", "Labels/labels_consensus.csv",
     lambda p: edit(p, "MSP-PODCAST_1000_0002.wav", "../../etc/passwd"), "problem"),
    ("msp_podcast", "Labels/labels_consensus.csv",
     lambda p: edit(p, "MSP-PODCAST_1000_0002.wav", "MSP-PODCAST_1000_0001.wav"), "problem"),
    ("msp_podcast", "Labels/labels_detailed.csv",
     lambda p: raw(p, lambda b: b.replace(b"Concerned", b"Conc\xe9rned")), "problem"),
    ("crema_d", "processedResults/tabulatedVotes.csv",
     lambda p: edit(p, '"emoVote"', '"vote"'), "error"),
    ("crema_d", "processedResults/tabulatedVotes.csv",
     lambda p: edit(p, '"1008_ITS_SAD_XX"', '"../../../etc/passwd"'), "problem"),
    ("crema_d", "processedResults/tabulatedVotes.csv",
     lambda p: raw(p, lambda b: b.replace(b"\n", b"\r\n")), "clean"),
    # a NUL byte in a name (found by bench/fuzz_files.py): os.path.realpath raised ValueError
    ("iemocap", EVAL, lambda p: edit(p, "Ses01F_impro01_F002\tang", "Ses01F_impro01_F\x00002\tang"),
     "problem"),
    ("msp_podcast", "Labels/labels_consensus.csv",
     lambda p: edit(p, "MSP-PODCAST_1000_0002.wav", "MSP-PODCAST_1000_\x000002.wav"), "problem"),
    ("crema_d", "processedResults/tabulatedVotes.csv",
     lambda p: edit(p, '"1008_ITS_SAD_XX"', '"1008_ITS_\x00SAD_XX"'), "problem"),
]


def test_every_damage_is_reported_and_good_items_still_load(tmp_path, record_property):
    handled = 0
    for n, (corpus, rel, damage, expect) in enumerate(DAMAGES):
        root = corpus_copy(corpus, tmp_path / str(n))
        damage(root / rel)
        undamaged = load_dataset(corpus)
        full = len(undamaged)
        standing = {Path(p.path).name for p in undamaged.problems}  # MSP's missing transcript
        if expect == "error":
            with pytest.raises(DataError) as info:
                load_dataset(corpus, root)
            assert Path(rel).name in str(info.value)
            handled += 1
            continue
        dataset = load_dataset(corpus, root)
        if expect == "clean":
            assert len(dataset) == full and not [p for p in dataset.problems if p.severity == "error"]
            continue
        found = [p for p in dataset.problems if Path(p.path).name not in standing]
        assert found, (corpus, rel)
        assert all(p.path.endswith(Path(rel).name) or "passwd" in p.message for p in found)
        assert any(p.line is not None for p in found)
        assert len(dataset) >= full - 2  # one bad item costs itself (a duplicate, its pair)
        handled += 1
    record_property("reliability", f"bad labels: {len(DAMAGES)} damaged label files, {handled} "
                                   f"reported with file and line, {len(DAMAGES) - handled} read "
                                   "cleanly (BOM/CRLF), crashes 0")


line_text = st.text(alphabet=string.printable + "éü\x00", max_size=60)
emo_lines = st.lists(st.one_of(
    line_text, st.sampled_from(["", "% header", "[1.0 - 2.0]\tSes01F_x_F000\tneu\t[1, 2, 3]",
                                "C-E2:\tNeutral;\t()", "C-E3:\t;\t()", "A-E2:\tval 3;\t()",
                                "[abc - def]\tSes\tneu\t[]", "C-F1:\tAnger; Sadness;\t(x)"])),
    max_size=30)


@settings(max_examples=200, deadline=None)
@given(emo_lines)
def test_fuzzed_emo_evaluation_files_never_raise(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Ses01F_x.txt"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
        problems = ProblemLog()
        blocks = iemocap_loader._read_blocks(path, problems)
        assert all(p.line is not None and p.path == str(path) for p in problems)
        assert all(b.utt for b in blocks)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzzed_emo_detail_never_raises(text):
    problems = ProblemLog()
    worker, primary = msp_loader._parse_emo_detail(text, Path("labels_detailed.csv"), 7, problems)
    if worker is None:
        assert [p.line for p in problems] == [7]
    else:
        assert worker and primary and ":" not in worker and not problems


@settings(max_examples=60, deadline=None)
@given(emo_lines)
def test_a_fuzzed_corpus_loads_or_raises_data_error_only(lines):
    with tempfile.TemporaryDirectory() as tmp:
        root = corpus_copy("iemocap", Path(tmp))
        (root / EVAL).write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
        try:
            dataset = load_dataset("iemocap", root)
        except DataError:
            return
        assert len(dataset) >= 16  # the other two dialogs (16 items) are untouched
