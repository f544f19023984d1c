import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


def test_batch_size_estimate_counts_the_copies_each_decoding_keeps():
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    qwen_7b = SimpleNamespace(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                              hidden_size=4096, intermediate_size=11008)
    per_clip_greedy = (2 * 32 * 32 * 128 * 2 * (342 + 40)  # keys and values of one sequence
                       + 342 * (3 * 11008 + 6 * 4096) * 2 + 156_032 * 4 * 6)
    free = int(100 * per_clip_greedy / 0.6) + 1
    assert clips_per_batch(free, qwen_7b, 342, 40, 1, 156_032) == 100
    beam = clips_per_batch(free, qwen_7b, 342, 40, 5, 156_032)
    assert 100 / 6 - 1 < beam < 100 / 5  # five beams plus the prompt copy they came from
    assert clips_per_batch(10**15, qwen_7b, 342, 40, 1, 156_032) == 256  # capped
    assert clips_per_batch(0, qwen_7b, 342, 40, 1, 156_032) == 1


def test_batch_size_estimate_counts_the_prompt_once_in_a_grouped_cache():
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    qwen_7b = SimpleNamespace(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                              hidden_size=4096, intermediate_size=11008)
    per_token = 2 * 32 * 32 * 128 * 2
    per_clip_beam = (per_token * (342 + 5 * 40)  # the prompt once, forty new tokens per beam
                     + 342 * (3 * 11008 + 6 * 4096) * 2 + 5 * 156_032 * 4 * 6)
    free = int(50 * per_clip_beam / 0.6) + 1
    assert clips_per_batch(free, qwen_7b, 342, 40, 5, 156_032, shared_prompt=True) == 50
    assert clips_per_batch(free, qwen_7b, 342, 40, 5, 156_032) < 50 / 3  # six prompt copies


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


def _requests(n):
    import numpy as np

    from harness.models import Request

    return [Request(np.zeros(100 * (n - i), np.float32), "", f"r{i}") for i in range(n)]


def test_a_batch_that_defers_its_results_is_read_after_the_next_batch_is_queued():
    from harness.models._hf_common import batched

    events = []

    def run(chunk):
        names = [r.item_id for r in chunk]
        events.append(("queued", names[0]))

        def read():
            events.append(("read", names[0]))
            return names
        return read

    out = batched(_requests(5), run, 2, torch, on_error=lambda _, reason: reason)
    assert out == [f"r{i}" for i in range(5)]
    assert events == [("queued", "r0"), ("queued", "r2"), ("read", "r0"), ("queued", "r4"),
                      ("read", "r2"), ("read", "r4")]


def test_a_deferred_read_that_fails_is_retried_one_request_at_a_time():
    from harness.models._hf_common import batched

    def run(chunk):
        names = [r.item_id for r in chunk]

        def read():
            if "r2" in names:
                raise RuntimeError("device fault")
            return names
        return read

    out = batched(_requests(5), run, 2, torch, on_error=lambda r, reason: f"{r.item_id}: {reason}")
    assert out == ["r0", "r1", "r2: RuntimeError: device fault", "r3", "r4"]


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
    for revision in ("1111aaaa", "2222bbbb"):
        (snapshots / revision).mkdir(parents=True)
        (snapshots / revision / "config.json").write_text("{}")
        (snapshots / revision / "model.safetensors").write_bytes(b"")
        if revision == "1111aaaa":
            assert local_weights("m", "SOME_MODEL_PATH", "org/m", None) == snapshots / revision
    with pytest.raises(ModelUnavailable, match=r"m: the Hugging Face cache holds 2 snapshots of "
                                               r"org/m and no 'main' ref to choose \(.*1111aaaa, "
                                               r".*2222bbbb\); set SOME_MODEL_PATH to the one"):
        local_weights("m", "SOME_MODEL_PATH", "org/m", None)
    (tmp_path / "models--org--m" / "refs").mkdir()
    (tmp_path / "models--org--m" / "refs" / "main").write_text("2222bbbb")
    assert local_weights("m", "SOME_MODEL_PATH", "org/m", None) == snapshots / "2222bbbb"


def test_out_of_memory_halves_the_batch_down_to_one_clip_and_one_that_never_fits_fails_alone():
    from harness.models._hf_common import batched

    sizes = []

    def run(chunk):
        sizes.append(len(chunk))
        if len(chunk) > 1 or chunk[0].item_id == "r0":
            raise torch.cuda.OutOfMemoryError("simulated")
        return [r.item_id for r in chunk]

    with pytest.warns(UserWarning) as warned:
        out = batched(_requests(5), run, 4, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert [str(w.message) for w in warned] == ["out of GPU memory: batch size halved to 2",
                                                "out of GPU memory: batch size halved to 1"]
    assert sizes == [4, 2, 1, 1, 1, 1, 1]
    assert out == ["r0: out of GPU memory for a single clip", "r1", "r2", "r3", "r4"]


def test_a_batch_size_below_one_runs_one_clip_at_a_time():
    from harness.models._hf_common import batched

    sizes = []
    out = batched(_requests(3), lambda chunk: sizes.append(len(chunk)) or [r.item_id for r in chunk],
                  0, torch, on_error=lambda r, why: why)
    assert out == ["r0", "r1", "r2"] and sizes == [1, 1, 1]


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


def test_a_config_s_own_head_dim_and_kv_heads_size_the_cache():
    """Where ``head_dim`` is not hidden size over heads (Qwen3's 128 at 2048 / 32) it is the one
    counted; a config without ``num_key_value_heads`` counts every head."""
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    wide = SimpleNamespace(num_hidden_layers=2, num_attention_heads=32, num_key_value_heads=4,
                           head_dim=128, hidden_size=2048, intermediate_size=0)
    per_clip = 2 * 2 * 4 * 128 * 2 * (100 + 10) + 100 * 6 * 2048 * 2 + 1 * 1000 * 4 * 6
    free = int(7 * per_clip / 0.6) + 1
    assert clips_per_batch(free, wide, 100, 10, 1, 1000) == 7
    every_head = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, head_dim=128,
                                 hidden_size=2048, intermediate_size=0)
    assert clips_per_batch(free, every_head, 100, 10, 1, 1000) == 7


def test_a_retry_after_out_of_memory_reads_the_queued_batch_and_empties_the_cache_first():
    """The batch queued before the one that ran out is read (its device tensors let go of) and
    the allocator's cache emptied before the halved retry is queued."""
    from types import SimpleNamespace

    from harness.models._hf_common import batched

    class OutOfMemory(Exception):
        pass

    events = []
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(
        OutOfMemoryError=OutOfMemory, empty_cache=lambda: events.append("empty cache")))

    def run(chunk):
        names = [r.item_id for r in chunk]
        if len(chunk) > 1 and names[0] != "r0":
            raise OutOfMemory
        events.append(("queued", *names))
        return lambda: events.append(("read", *names)) or names

    with pytest.warns(UserWarning, match="halved to 1"):
        out = batched(_requests(4), run, 2, fake_torch, on_error=lambda r, why: why)
    assert out == ["r0", "r1", "r2", "r3"]
    assert events == [("queued", "r0", "r1"), ("read", "r0", "r1"), "empty cache",
                      ("queued", "r2"), ("queued", "r3"), ("read", "r2"), ("read", "r3")]


def test_free_gpu_memory_counts_what_the_allocator_holds_unused(monkeypatch):
    from harness.models._hf_common import free_gpu_bytes

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 80_000))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 700)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 200)
    assert free_gpu_bytes("cuda:0") == 1000 + 700 - 200


def test_a_repeated_cache_counts_each_sequence_and_the_prompt_copy_they_came_from():
    from types import SimpleNamespace

    from harness.models._hf_common import clips_per_batch

    config = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                             hidden_size=256, intermediate_size=0)
    per_token = 2 * 2 * 4 * 64 * 2
    for sequences, copies in ((1, 1), (2, 3), (5, 6)):
        per_clip = per_token * (100 + 10) * copies + 100 * 6 * 256 * 2 + sequences * 1000 * 24
        free = int(9 * per_clip / 0.6) + 1
        assert clips_per_batch(free, config, 100, 10, sequences, 1000) == 9, sequences


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


def test_a_deferred_read_of_one_request_that_fails_is_not_run_again():
    from harness.models._hf_common import batched

    runs = []

    def run(chunk):
        runs.append(chunk[0].item_id)

        def read():
            if chunk[0].item_id == "r1":
                raise ValueError("bad logits")
            return [chunk[0].item_id]
        return read

    out = batched(_requests(3), run, 1, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert out == ["r0", "r1: ValueError: bad logits", "r2"] and runs == ["r0", "r1", "r2"]


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
    (tmp_path / "config.json").write_text("{}")
    assert load_weights(Loader, "m", tmp_path, dtype="x") == f"model from {tmp_path}"
    Loader.missing = ["proj.weight", "a.bias", "proj.bias", "b.weight"]
    with pytest.raises(ModelUnavailable, match=r"^m: the weights in .* do not fit Loader: 4 of its "
                                               r"parameters are missing from them \(e.g. a.bias, "
                                               r"b.weight, proj.bias\), which would start at random"):
        load_weights(Loader, "m", tmp_path, dtype="x")


def test_a_request_that_raises_at_once_in_a_batch_of_one_fails_alone():
    from harness.models._hf_common import batched

    def run(chunk):
        if chunk[0].item_id == "r1":
            raise RuntimeError("CUDA error: device-side assert")
        return [chunk[0].item_id]

    runs = []
    counted = lambda chunk: runs.append(chunk[0].item_id) or run(chunk)  # noqa: E731
    out = batched(_requests(3), counted, 1, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert out == ["r0", "r1: RuntimeError: CUDA error: device-side assert", "r2"]
    assert runs == ["r0", "r1", "r2"]  # not run again on its own: it was on its own


def test_a_batch_that_raises_at_once_is_retried_singly_after_the_queued_batch_is_read():
    from harness.models._hf_common import batched

    events = []

    def run(chunk):
        names = [r.item_id for r in chunk]
        if len(chunk) > 1 and "r3" in names:
            raise RuntimeError("shape mismatch")
        if names == ["r3"]:
            raise ValueError("bad clip")
        events.append(("queued", *names))
        return lambda: events.append(("read", *names)) or names

    out = batched(_requests(4), run, 2, torch, on_error=lambda r, why: f"{r.item_id}: {why}")
    assert out == ["r0", "r1", "r2", "r3: ValueError: bad clip"]
    assert events[:3] == [("queued", "r0", "r1"), ("read", "r0", "r1"), ("queued", "r2")]


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
