"""The Hugging Face backends' shared helpers (harness.models._hf_common): placeholders, devices, weights
folders and their revisions, generate's settings and the chosen tokens' log-probabilities; the
batching is tested in test_hf_batching.py."""

import os

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


def test_placeholders_expand_in_id_space_and_a_stray_one_is_named():
    import re

    from harness.models._hf_common import expand_placeholders

    rows = [[5, 9, 6], [5, 9, 7, 9, 6, 8]]  # 9: the audio placeholder; the second has two audios
    ids, mask = expand_placeholders(rows, ["a", "b"], [1, 2], [3, 1, 2], placeholder=9, pad_id=0)
    assert ids.tolist() == [[0, 0, 5, 9, 9, 9, 6], [5, 9, 7, 9, 9, 6, 8]]
    assert mask.tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]]
    stray = "says <|AUDIO|> aloud"
    with pytest.raises(ValueError, match="expected 1 audio placeholder.*found 2.*" + re.escape(stray)):
        expand_placeholders([[9, 4, 9]], [stray], [1], [3], placeholder=9, pad_id=0)
    long = "x" * 79 + "yz"  # a long prompt is named by its first 80 characters
    with pytest.raises(ValueError, match=re.escape(f"found 0: {long[:80]!r}") + "$"):
        expand_placeholders([[4]], [long], [1], [3], placeholder=9, pad_id=0)


def test_a_row_that_cannot_be_scored_is_nan_with_its_reason():
    import numpy as np

    from harness.models._hf_common import unscored_row

    row = unscored_row(3)(object(), "RuntimeError: too long")
    assert np.isnan(row.logprobs).all() and row.logprobs.shape == (3,)
    assert row.error == "RuntimeError: too long"


def test_flat_positions_keep_each_rows_real_columns_in_order():
    from harness.models._hf_common import flat_positions, to_device

    assert flat_positions([2, 0, 3], 4).tolist() == [0, 1, 8, 9, 10]
    moved = to_device(flat_positions([1], 2), "cpu")
    assert moved.tolist() == [0] and moved.device.type == "cpu"


def test_a_model_that_falls_back_to_the_cpu_where_gpus_are_listed_says_so(monkeypatch):
    """A CPU build of torch on a GPU machine: the model would run for hours without a word."""
    import shutil
    import warnings

    from harness.models._hf_common import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("HARNESS_GPUS", "0,1")
    with pytest.warns(UserWarning, match=r"big-model runs on the CPU: GPUs are listed \(0,1\), but "
                                         r"torch .* sees no GPU"):
        assert pick_device(None, "big-model") == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_device("cpu", "big-model") == "cpu"  # asked for: nothing to say
        monkeypatch.delenv("HARNESS_GPUS")
        assert pick_device(None, "big-model") == "cpu"  # no GPU anywhere: nothing to say
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    with pytest.warns(UserWarning, match="nvidia-smi is installed"):
        pick_device(None, "big-model")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pick_device(None, "big-model") == "cuda"  # seen: used, and nothing to say
        assert pick_device("cuda:1", "big-model") == "cuda:1"


def test_a_weights_folder_under_home_is_expanded_and_a_missing_one_named_as_given(tmp_path, monkeypatch):
    from harness.models import ModelNotLoaded
    from harness.models._hf_common import local_weights

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("SOME_MODEL_PATH", "~/weights")  # quoted in a .env file: not expanded there
    assert local_weights("m", "SOME_MODEL_PATH", "org/m", None) == tmp_path / "weights"
    with pytest.raises(ModelNotLoaded, match="m: SOME_MODEL_PATH=~/nothing: no such folder"):
        monkeypatch.setenv("SOME_MODEL_PATH", "~/nothing")
        local_weights("m", "SOME_MODEL_PATH", "org/m", None)
    # a path given to the model wins over the variable, and a typo in it is named as given too
    assert local_weights("m", "SOME_MODEL_PATH", "org/m", "~/weights") == tmp_path / "weights"
    with pytest.raises(ModelNotLoaded, match="m: path=~/wieghts: no such folder"):
        local_weights("m", "SOME_MODEL_PATH", "org/m", "~/wieghts")
    (tmp_path / "weights.safetensors").write_bytes(b"")  # the file given for its folder: said so
    with pytest.raises(ModelNotLoaded, match="m: path=~/weights.safetensors: is a regular file, "
                                             "not a folder"):
        local_weights("m", "SOME_MODEL_PATH", "org/m", "~/weights.safetensors")


def test_a_hub_cache_holding_only_a_processors_files_is_no_weights(tmp_path, monkeypatch):
    """AutoProcessor.from_pretrained caches the config beside the tokenizer's files: the model's
    cells skip saying so (as for weights never fetched), not fail with 'copy them again'."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    from harness.models import ModelUnavailable
    from harness.models._hf_common import local_weights, weights_revision

    repo = tmp_path / "models--org--m"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    (snapshot / "config.json").write_text("{}")
    (snapshot / "tokenizer.json").write_text("{}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("SOME_MODEL_PATH", raising=False)
    with pytest.raises(ModelUnavailable, match=r"m: the Hugging Face cache holds org/m's config "
                                               r"but no weights \(.*0123abcd\); set SOME_MODEL_PATH"):
        local_weights("m", "SOME_MODEL_PATH", "org/m", None)
    (snapshot / "safe_ckpt").mkdir()  # Audio Flamingo 2's chunks lie a folder down
    (snapshot / "safe_ckpt" / "chunk_0.safetensors").write_bytes(b"")
    assert local_weights("m", "SOME_MODEL_PATH", "org/m", None) == snapshot
    assert weights_revision(snapshot) == "0123abcd"


def test_a_snapshot_pinned_to_a_revision_is_found_without_a_main_ref(tmp_path, monkeypatch):
    """snapshot_download(revision=...) writes no refs/main: the one snapshot there is the model's;
    of several, none is guessed."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    from harness.models import ModelUnavailable
    from harness.models._hf_common import local_weights

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("SOME_MODEL_PATH", raising=False)
    snapshots = tmp_path / "models--org--m" / "snapshots"
    for revision in ("1111aaaa", "2222bbbb", "3333cccc"):
        (snapshots / revision).mkdir(parents=True)
        (snapshots / revision / "config.json").write_text("{}")
        (snapshots / revision / "model.safetensors").write_bytes(b"")
        if revision == "1111aaaa":
            assert local_weights("m", "SOME_MODEL_PATH", "org/m", None) == snapshots / revision
    with pytest.raises(ModelUnavailable, match=r"m: the Hugging Face cache holds 3 snapshots of "
                                               r"org/m and no 'main' ref to choose \(.*1111aaaa, "
                                               r".*2222bbbb, .*3333cccc\); set SOME_MODEL_PATH to the one"):
        local_weights("m", "SOME_MODEL_PATH", "org/m", None)
    (snapshots / "4444dddd").mkdir()  # more than three: the first three, then an ellipsis
    (snapshots / "4444dddd" / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match=r"holds 4 snapshots .*3333cccc, \.\.\.\); set"):
        local_weights("m", "SOME_MODEL_PATH", "org/m", None)
    (tmp_path / "models--org--m" / "refs").mkdir()
    (tmp_path / "models--org--m" / "refs" / "main").write_text("2222bbbb")
    assert local_weights("m", "SOME_MODEL_PATH", "org/m", None) == snapshots / "2222bbbb"


def test_auto_dtype_is_bfloat16_on_a_gpu_and_float32_on_the_cpu():
    from harness.models._hf_common import resolve_dtype

    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda:1") is torch.bfloat16
    assert resolve_dtype("float16", "cpu") is torch.float16


def test_the_cache_keyword_is_the_one_the_decoders_forward_takes():
    from harness.models._hf_common import cache_kwarg

    class Newer:
        def forward(self, input_ids=None, cache=None):
            pass

    class Older:
        def forward(self, input_ids=None, past_key_values=None):
            pass

    assert (cache_kwarg(Newer()), cache_kwarg(Older())) == ("cache", "past_key_values")


def test_a_local_checkpoints_revision_hashes_its_files_names_and_sizes_with_their_bytes(tmp_path):
    """The same bytes split otherwise across the files, or under other names, are another
    checkpoint."""
    from harness.models._hf_common import weights_revision

    def checkpoint(name, files):
        folder = tmp_path / name
        folder.mkdir()
        for file, data in files.items():
            (folder / file).write_bytes(data)
        return weights_revision(folder)

    one = checkpoint("one", {"a.bin": b"x", "b.bin": b"yy"})
    assert one.startswith("sha256:") and len(one) == len("sha256:") + 16
    assert one == checkpoint("same", {"a.bin": b"x", "b.bin": b"yy"})
    assert one != checkpoint("split", {"a.bin": b"xy", "b.bin": b"y"})
    assert one != checkpoint("renamed", {"a.bin": b"x", "c.bin": b"yy"})
    assert one != checkpoint("changed", {"a.bin": b"x", "b.bin": b"yz"})


def test_a_large_checkpoint_file_is_hashed_by_its_first_and_last_mib(tmp_path):
    """A shard over 64 MiB (here sparse) is read at its two ends only; one of 64 MiB whole."""
    from harness.models._hf_common import weights_revision

    mib = 2**20

    def revision(size, changed_at=None):
        folder = tmp_path / f"{size}-{changed_at}"
        folder.mkdir()
        with open(folder / "model.safetensors", "wb") as f:
            f.truncate(size)
            if changed_at is not None:
                f.seek(changed_at)
                f.write(b"\1")
        return weights_revision(str(folder))  # a path given as text

    large = 65 * mib
    plain = revision(large)
    assert revision(large, mib) == revision(large, large - mib - 1) == plain  # not read
    assert revision(large, mib - 1) != plain and revision(large, large - mib) != plain
    assert revision(64 * mib, 32 * mib) != revision(64 * mib)  # read whole


def test_weights_that_leave_parameters_unset_are_refused_naming_the_first_few(tmp_path):
    """transformers would start the missing ones at random and only log it."""
    from harness.models import ModelNotLoaded, ModelUnavailable
    from harness.models._hf_common import load_weights

    class Loader:
        missing: list = []

        @classmethod
        def from_pretrained(cls, path, local_files_only, output_loading_info, **kwargs):
            assert local_files_only and output_loading_info and kwargs == {"dtype": "x"}
            return f"model from {path}", {"missing_keys": cls.missing}

    with pytest.raises(ModelNotLoaded, match="has no config.json: not a checkpoint folder"):
        load_weights(Loader, "m", tmp_path, dtype="x")
    os.mkfifo(tmp_path / "config.json")  # there, but a FIFO: named as one, not as missing
    with pytest.raises(ModelNotLoaded, match="cannot be read: config.json is a FIFO"):
        load_weights(Loader, "m", tmp_path, dtype="x")
    (tmp_path / "config.json").unlink()
    (tmp_path / "config.json").write_text("{}")
    assert load_weights(Loader, "m", tmp_path, dtype="x") == f"model from {tmp_path}"
    Loader.missing = ["proj.weight", "a.bias", "proj.bias", "b.weight"]
    with pytest.raises(ModelUnavailable, match=r"^m: the weights in .* do not fit Loader: 4 of its "
                                               r"parameters are missing from them \(e.g. a.bias, "
                                               r"b.weight, proj.bias\), which would start at random"):
        load_weights(Loader, "m", tmp_path, dtype="x")


def test_generate_settings_are_neutral_but_for_the_decoding_asked_for():
    """No length penalty, no repetition penalty, no top-k (checkpoints ship sampling defaults
    that generate would otherwise apply); temperature and top-p only when sampling."""
    from harness.models import Decoding
    from harness.models._hf_common import generate_kwargs

    beam = generate_kwargs(Decoding(mode="beam", num_candidates=5, max_new_tokens=40))
    assert beam == {"max_new_tokens": 40, "min_new_tokens": 0, "do_sample": False, "num_beams": 5,
                    "num_return_sequences": 5, "length_penalty": 0.0, "early_stopping": False,
                    "repetition_penalty": 1.0, "output_scores": True, "output_logits": True,
                    "return_dict_in_generate": True, "temperature": None, "top_p": None,
                    "top_k": None}
    sample = generate_kwargs(Decoding(mode="sample", num_candidates=3, temperature=0.7, top_p=0.9))
    assert (sample["do_sample"], sample["num_beams"], sample["num_return_sequences"]) == (True, 1, 3)
    assert (sample["temperature"], sample["top_p"], sample["top_k"]) == (0.7, 0.9, None)


def test_chosen_log_probabilities_are_the_models_own_not_renormalised_after_masking():
    """Under a min-length mask, beam search's scores are the model's log-softmax with EOS set
    to -inf and not renormalised: read as they are, a beam's token keeps its raw log-probability
    (renormalised it would gain log(1 / (1 - p(EOS)))). Greedy and sampled steps are read from
    the raw logits, normalised."""
    from types import SimpleNamespace

    from transformers.generation.utils import GenerationMixin

    from harness.models import Decoding
    from harness.models._hf_common import chosen_logprobs

    class Model:  # transformers' own computation, over a vocabulary of four (EOS is 3)
        config = SimpleNamespace(get_text_config=lambda: SimpleNamespace(vocab_size=4))
        compute_transition_scores = GenerationMixin.compute_transition_scores

    raw = torch.tensor([[[1.0, 0.5, 0.0, 2.0], [0.2, 1.5, 0.1, 1.0]],   # step 0, beams 0 and 1
                        [[0.3, 0.0, 2.5, 0.4], [1.0, 1.0, 0.0, 0.5]]])  # step 1
    raw_logprobs = torch.log_softmax(raw, -1)
    masked = raw_logprobs.clone()
    masked[0, :, 3] = float("-inf")  # min_new_tokens: no EOS at the first step
    sequences = torch.tensor([[9, 0, 2], [9, 1, 0]])  # a prompt token, then two new ones each
    beam_indices = torch.tensor([[0, 0], [1, 1]])
    beam = chosen_logprobs(Model(), SimpleNamespace(sequences=sequences, scores=tuple(masked),
                                                    beam_indices=beam_indices),
                           Decoding(mode="beam", num_candidates=2))
    expected = torch.tensor([[raw_logprobs[0, 0, 0], raw_logprobs[1, 0, 2]],
                             [raw_logprobs[0, 1, 1], raw_logprobs[1, 1, 0]]])
    torch.testing.assert_close(beam, expected)
    greedy = chosen_logprobs(Model(), SimpleNamespace(sequences=sequences[:1], logits=tuple(raw[:, :1])),
                             Decoding())
    torch.testing.assert_close(greedy, expected[:1])
