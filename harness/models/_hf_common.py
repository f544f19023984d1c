"""Helpers shared by the Hugging Face backends: dtypes, revisions, OOM-safe batching."""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness._regular import not_a_folder
from harness.models._checkpoint_files import refuse_irregular_files, unreadable_files_named

AUDIO_TOKEN = "<|AUDIO|>"


def cache_kwarg(module) -> str:
    """The keyword a transformers decoder takes its KV cache by (renamed across 5.x releases)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def generate_kwargs(decoding) -> dict:
    """transformers ``generate`` settings for a :class:`~harness.models.Decoding`: no length
    penalty, neutral penalties set explicitly (checkpoints ship sampling defaults), raw logits kept."""
    sampling = decoding.mode == "sample"
    return {
        "max_new_tokens": decoding.max_new_tokens, "min_new_tokens": decoding.min_new_tokens,
        "do_sample": sampling, "num_beams": decoding.num_candidates if decoding.mode == "beam" else 1,
        "num_return_sequences": decoding.num_candidates, "length_penalty": 0.0,
        "early_stopping": False, "repetition_penalty": 1.0, "output_scores": True,
        "output_logits": True, "return_dict_in_generate": True,
        "temperature": decoding.temperature if sampling else None,
        "top_p": decoding.top_p if sampling else None, "top_k": None,
    }


def chosen_logprobs(model, out, decoding):
    """(sequences, steps) log-probabilities of the chosen tokens under the model itself.

    Greedy and sampled steps are read from the raw logits: the processed scores would carry the
    temperature and, renormalised, the min-length mask on EOS. Beam scores are the model's
    log-softmax with those masks applied and not renormalised, so they are raw already.
    """
    if decoding.mode == "beam":
        return model.compute_transition_scores(out.sequences, out.scores, out.beam_indices,
                                               normalize_logits=False)
    return model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)


def clips_per_batch(free_bytes: int, config, prompt_tokens: int, new_tokens: int,
                    sequences_per_clip: int, vocab: int, cap: int = 256,
                    shared_prompt: bool = False) -> int:
    """How many clips fit in ``free_bytes``: KV cache, prefill temporaries, vocab-wide rows.

    The KV cache of a clip holds its prompt and new tokens once per sequence, plus the prompt
    copy the beams or samples were repeated from (kept for the next batch); with
    ``shared_prompt`` (the grouped cache of the static decode step) the prompt once and the new
    tokens per sequence. An estimate, with 40% of memory left over: if it is still too high, the
    out-of-memory handler halves the batch.
    """
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_token = 2 * config.num_hidden_layers * heads * head_dim * 2  # keys and values, 16-bit
    if shared_prompt:
        kv = per_token * (prompt_tokens + new_tokens * sequences_per_clip)
    else:
        copies = sequences_per_clip + (1 if sequences_per_clip > 1 else 0)
        kv = per_token * (prompt_tokens + new_tokens) * copies
    temporaries = prompt_tokens * (3 * config.intermediate_size + 6 * config.hidden_size) * 2
    vocab_rows = sequences_per_clip * vocab * 4 * 6  # float32 log-probs, beam totals, top-k
    return int(max(1, min(cap, 0.6 * free_bytes // (kv + temporaries + vocab_rows))))


def to_device(array, device):
    """A host array or tensor on ``device`` without waiting for the device: on a GPU through
    pinned memory and an asynchronous copy (a plain copy from pageable memory makes the host
    wait for every kernel queued before it, so the next batch's host work could not overlap
    this one's kernels)."""
    import torch

    tensor = torch.as_tensor(array)
    if torch.device(device).type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def flat_positions(lengths, width: int):
    """Flat indices, row by row, of the first ``lengths[r]`` columns of each row of a
    (rows, ``width``) array: the encoded audio frames that are real, not padding."""
    import numpy as np

    lengths = np.asarray(lengths)
    return np.flatnonzero(np.arange(width)[None, :] < lengths[:, None])


def free_gpu_bytes(device) -> int:
    """Memory a new batch can have on ``device``: free on the card plus what PyTorch's
    allocator holds reserved but unused."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def expand_placeholders(rows: Sequence[Sequence[int]], texts: Sequence[str], pieces: Sequence[int],
                        counts: Sequence[int], placeholder: int, pad_id: int):
    """Token ids of prompts written with one audio placeholder per audio, each placeholder
    repeated to its audio's token count (``counts``, in order), left-padded, with the mask.

    The ids equal those of the text with the placeholders already repeated (an added token
    splits the text around it), without the tokenizer parsing a few hundred placeholders per
    clip. A prompt with another number of placeholders than its ``pieces`` raises, naming it.
    """
    import numpy as np

    remaining = iter(counts)
    expanded = []
    for text, ids_of_text, k in zip(texts, rows, pieces):
        row = np.asarray(ids_of_text, dtype=np.int64)
        at = np.flatnonzero(row == placeholder)
        if len(at) != k:
            raise ValueError(f"expected {k} audio placeholder(s) in the prompt, found {len(at)}: "
                             f"{text[:80]!r}")
        repeats = np.ones(len(row), dtype=np.int64)
        repeats[at] = [next(remaining) for _ in range(k)]
        expanded.append(np.repeat(row, repeats))
    width = max(len(row) for row in expanded)
    ids = np.full((len(expanded), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(expanded), width), dtype=np.int64)
    for i, full in enumerate(expanded):
        ids[i, width - len(full):], mask[i, width - len(full):] = full, 1
    return ids, mask


def pick_device(device: str | None, name: str) -> str:
    """``device``, else CUDA where torch sees it, else the CPU, with a warning where GPUs are
    there to be seen (``HARNESS_GPUS``/``CUDA_VISIBLE_DEVICES`` list some, or ``nvidia-smi``
    exists) and torch sees none: a CPU build of torch on a GPU machine runs a 7B model on the
    CPU, hours where it should take minutes."""
    import shutil

    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    listed = os.environ.get("HARNESS_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed or shutil.which("nvidia-smi"):
        where = f"GPUs are listed ({listed})" if listed else "nvidia-smi is installed"
        warnings.warn(f"{name} runs on the CPU: {where}, but torch {torch.__version__} sees no "
                      "GPU (a CPU build of torch, or a driver it cannot use)", stacklevel=2)
    return "cpu"


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    return getattr(torch, dtype)


_DESCRIBED_DTYPES = ("float32", "float16", "bfloat16")


def described_placement(dtype: object, device: object) -> tuple[str, str] | None:
    """The dtype and device a backend loaded with these arguments names in its info
    (``("bfloat16", "cuda:0")``), as :func:`pick_device` and :func:`resolve_dtype` choose them,
    without loading it; None where that cannot be told so (another kind of device, a dtype
    named otherwise). Imports torch only where the device is left to it; ``"cuda"`` is the
    worker's GPU, its first (the grid gives each worker its own through CUDA_VISIBLE_DEVICES)."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not isinstance(dtype, str):
        return None
    device = "cuda:0" if device == "cuda" else device
    if device != "cpu" and not (device.startswith("cuda:") and device[5:].isdigit()):
        return None
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return (dtype, device) if dtype in _DESCRIBED_DTYPES else None


def load_weights(loader, name: str, path, **kwargs):
    """``loader.from_pretrained(path, local_files_only=True, **kwargs)``, refusing weights that
    leave any of the model's parameters unset: transformers would start those at random and
    only log it (a Qwen2-Audio folder given for Audio Flamingo 3 loads, with a random projector).

    Raises:
        ModelUnavailable: parameters missing from the checkpoint, named (the first few).
        ModelNotLoaded: files that cannot be read (a shard cut short by a copy), naming the
            folder, which the reader's own message may not.
    """
    from harness.models.api import ModelNotLoaded, ModelUnavailable

    refuse_irregular_files(name, path)
    if not (Path(path) / "config.json").is_file():  # transformers would build the class's
        # default configuration, a 7B model for Qwen2-Audio, and fill it: 33 GB, then a kill
        raise ModelNotLoaded(f"{name}: {path} has no config.json: not a checkpoint folder")
    with unreadable_files_named(name, path, "weights"):
        model, info = loader.from_pretrained(str(path), local_files_only=True,
                                             output_loading_info=True, **kwargs)
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ModelUnavailable(f"{name}: the weights in {path} do not fit {loader.__name__}: "
                               f"{len(missing)} of its parameters are missing from them "
                               f"(e.g. {', '.join(missing[:3])}), which would start at random")
    return model


def hf_cache_snapshot(repo_id: str) -> str | None:
    """The local Hugging Face cache folder of ``repo_id``, if its config is cached (no download):
    the snapshot its ``main`` ref names, else the one snapshot there (a download pinned to a
    revision writes no ``main`` ref).

    Raises:
        ModelUnavailable: no ``main`` ref and several snapshots: which one is not guessed.
    """
    try:
        from huggingface_hub import constants, try_to_load_from_cache
        from huggingface_hub.file_download import repo_folder_name
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(found, str):
        return str(Path(found).parent)
    snapshots = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    pinned = sorted(p.parent for p in (snapshots / "snapshots").glob("*/config.json"))
    if len(pinned) > 1:
        from harness.models.api import ModelUnavailable

        raise ModelUnavailable(f"the Hugging Face cache holds {len(pinned)} snapshots of "
                               f"{repo_id} and no 'main' ref to choose ("
                               f"{', '.join(str(p) for p in pinned[:3])}"
                               f"{', ...' if len(pinned) > 3 else ''})")
    return str(pinned[0]) if pinned else None


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def _holds_weights(folder: Path) -> bool:
    """Whether a cached snapshot holds a weights file (at any depth: Audio Flamingo 2 keeps its
    chunks in ``safe_ckpt/``); a shard missing from several is the loader's to name."""
    return any(f.name.endswith(_WEIGHT_SUFFIXES) for f in folder.rglob("*"))


def local_weights(name: str, env_var: str, hub_id: str, path: str | os.PathLike | None) -> Path:
    """The checkpoint folder: argument, environment variable, or the local HF cache.

    Raises:
        ModelUnavailable: none of the three, naming the variable to set.
        ModelNotLoaded: a folder given (the argument or the variable) that is not one: a typo
            fails the model's cells, where skipping them would hide it.
    """
    from harness.models.api import ModelNotLoaded, ModelUnavailable

    given = None  # a folder named by the user, where one is
    if path:
        given = f"path={path}"
    elif os.environ.get(env_var):
        given = f"{env_var}={os.environ[env_var]}"
    try:
        found = path or os.environ.get(env_var) or hf_cache_snapshot(hub_id)
    except ModelUnavailable as exc:  # which of several snapshots is not guessed
        raise ModelUnavailable(f"{name}: {exc}; set {env_var} to the one to run") from None
    if not found:
        raise ModelUnavailable(f"{name}: no local weights; set {env_var} to a copy of {hub_id} "
                               "or put it in the Hugging Face cache")
    if not given and not _holds_weights(Path(found)):  # a processor fetched alone caches the config
        raise ModelUnavailable(f"{name}: the Hugging Face cache holds {hub_id}'s config but no "
                               f"weights ({found}); set {env_var} to a copy of it or download "
                               "its weights into the cache")
    folder = Path(found).expanduser()  # a quoted "~/models/x" reaches here unexpanded
    why = not_a_folder(folder) if given else None
    if why is not None:
        raise ModelNotLoaded(f"{name}: {given}: {why}")
    return folder


def weights_revision(path: str | Path) -> str:
    """A revision id for a local checkpoint: the hub snapshot hash, else a hash of its files.

    Small checkpoints are hashed whole; large shards by name, size and their first and last MiB.
    """
    path = Path(path)
    if path.parent.name == "snapshots":
        return path.name
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as stream:
            if size <= 64 * 2**20:
                h.update(stream.read())
            else:
                h.update(stream.read(2**20))
                stream.seek(-(2**20), 2)
                h.update(stream.read())
    return "sha256:" + h.hexdigest()[:16]


def length_order(requests: Sequence) -> list[int]:
    """The requests longest clip first and, among clips as long, longest prompt first, the
    requests that hear one clip (the same samples: a verifier's candidates) kept together: a
    batch then pads its rows to a width near each of its own (the clips of a synthetic corpus
    are all as long, and a verifier's candidates vary in length). Ties keep the given order."""
    clip: dict[int, int] = {}  # id(samples) -> the first request hearing them
    longest: dict[int, int] = {}
    for i, r in enumerate(requests):
        first = clip.setdefault(id(r.audio), i)
        longest[first] = max(longest.get(first, 0), len(r.prompt))
    return sorted(range(len(requests)), key=lambda i: (
        -len(requests[i].audio), -longest[clip[id(requests[i].audio)]], clip[id(requests[i].audio)]))


def batched(requests: Sequence, run: Callable[[list], Any], batch_size: int, torch,
            on_error: Callable[[Any, str], Any],
            on_halved: Callable[[int, int], None] | None = None) -> list:
    """Run ``run`` over length-sorted batches; halve the batch on out-of-memory and retry
    (``on_halved(tried, next size)`` is told, so that later calls can start lower).

    Results come back in request order. A single request that still does not fit, or whose batch
    raises, is given ``on_error(request, reason)`` instead of sinking the rest. ``run`` may
    return, instead of its list, a function that reads it: that is called once the next batch
    has been queued, so that the device works on one batch while the host prepares the next.
    """
    order = length_order(requests)
    results: list = [None] * len(requests)
    pending: list = []  # (chunk, reader) of the batch queued last
    start, size = 0, max(1, batch_size)
    while start < len(order):
        chunk = order[start:start + size]
        try:
            outputs = run([requests[i] for i in chunk])
        except torch.cuda.OutOfMemoryError:
            _read(pending, run, requests, results, on_error)
            torch.cuda.empty_cache()
            if size > 1:
                if on_halved is not None:
                    on_halved(size, size // 2)
                size //= 2
                warnings.warn(f"out of GPU memory: batch size halved to {size}", stacklevel=2)
                continue
            outputs = [on_error(requests[chunk[0]], "out of GPU memory for a single clip")]
        except (RuntimeError, ValueError) as exc:
            _read(pending, run, requests, results, on_error)
            if len(chunk) > 1:  # find the culprit: retry one by one
                outputs = [_one(run, requests[i], on_error) for i in chunk]
            else:
                outputs = [on_error(requests[chunk[0]], f"{type(exc).__name__}: {exc}")]
        _read(pending, run, requests, results, on_error)
        pending.append((chunk, outputs))
        start += len(chunk)
    _read(pending, run, requests, results, on_error)
    return results


def _read(pending: list, run, requests, results: list, on_error) -> None:
    """Store the results of the batch in ``pending``, reading them first if ``run`` deferred
    that; a batch whose reading fails is run again one request at a time, as a batch that
    raises at once is."""
    for chunk, outputs in pending:
        if callable(outputs):
            try:
                outputs = outputs()
            except (RuntimeError, ValueError) as exc:
                outputs = ([_one(run, requests[i], on_error) for i in chunk] if len(chunk) > 1
                           else [on_error(requests[chunk[0]], f"{type(exc).__name__}: {exc}")])
        for i, out in zip(chunk, outputs):
            results[i] = out
    pending.clear()


def _one(run, request, on_error):
    try:
        outputs = run([request])
        return (outputs() if callable(outputs) else outputs)[0]
    except (RuntimeError, ValueError) as exc:
        return on_error(request, f"{type(exc).__name__}: {exc}")


def unscored_row(width: int) -> Callable[[Any, str], Any]:
    """``on_error`` for ``label_logprobs``: a row of NaN carrying the reason."""
    from harness.models.api import LabelScores

    def fail(request, reason: str) -> LabelScores:
        return LabelScores.failed(width, reason)

    return fail
