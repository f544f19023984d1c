"""The Audio Flamingo 2 adapter on NVIDIA's own inference code: batched against one clip at a time.

    PYTHONPATH=PATH/inference_HF_pretrained python -m bench.af2_nvidia_check

NVIDIA's code (github NVIDIA/audio-flamingo, branch ``audio_flamingo_2``) is on no package
registry: installed as the README says (``ln -s src audio_flamingo_2`` in its
``inference_HF_pretrained`` folder, that folder on ``PYTHONPATH``), this script imports it as the
harness does, builds a small model with NVIDIA's own factory (HTSAT
``tiny``, NVIDIA's smallest CLAP audio encoder, and a 3-layer Qwen2 language model of the
embedded model's widths, random weights with the cross-attention gates opened so that each clip
shows in the answers) and writes it in NVIDIA's checkpoint layout, which the harness then loads
through ``get_model("audio-flamingo-2")``. It then runs the same clips (the embedded IEMOCAP's,
and longer ones built from them, so that a batch holds clips of one, two and three CLAP windows)
one clip at a time and ``--batch`` at a time: greedy tokens and beam-5 candidates must be equal,
α and the label scores equal within ``--tol``, and three batched samples of each clip at a
temperature near zero its greedy answer. It prints both rates (on a CPU, the small model's:
no figure for the full one) and exits 1 on a difference.

On a machine without CUDA, NVIDIA's CLAP (which builds on ``cuda:{current_device()}``) is
put on the CPU while the model is built. Its packages: torch, torchaudio (only its Python
transforms are used), torchlibrosa, torchvision, einops and einops_exts, beside the harness's
``hf`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

EMBEDDED_LM = "tiny_qwen2_audio"  # its text model's widths and its tokenizer
CLAP = {"method": "nvclap-large", "audio_embed_dim": 768, "checkpoint": "clap_ckpt/epoch_16.pt",
        "window_length": 10.0, "window_overlap": 0.0, "max_num_window": 12, "max_num_fewshot": 1,
        "finetune": True}  # NVIDIA's inference.yaml, with HTSAT tiny's width (96 x 8)
AUDIO_TRANSFORMER = {"n_head": 8, "n_layers": 1, "d_inner": 256, "max_num_media": 128,
                     "max_window_per_audio": 1, "common_encoder_embed_dim": 768}


def small_factory():
    """NVIDIA's factory as the harness imports it, its CLAP encoder HTSAT tiny."""
    from harness.models.af2_native import nvidia_factory

    factory = nvidia_factory()
    factory.CLAPAudioCfp.model_name = "tiny"
    return factory


@contextlib.contextmanager
def clap_on_cpu_without_cuda():
    """While NVIDIA's factory builds a model on a machine without CUDA: its CLAP, which it builds
    on ``cuda:{torch.cuda.current_device()}``, goes to the CPU (nothing changes where CUDA is)."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    current_device, to = torch.cuda.current_device, torch.nn.Module.to

    def to_cpu(module, *args, **kwargs):
        args = tuple("cpu" if isinstance(a, str) and a.startswith("cuda") else a for a in args)
        return to(module, *args, **kwargs)

    torch.cuda.current_device, torch.nn.Module.to = (lambda: 0), to_cpu  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.cuda.current_device, torch.nn.Module.to = current_device, to  # type: ignore[method-assign]


def build_checkpoint(factory, root: Path, seed: int = 0) -> None:
    """A small model from NVIDIA's factory, saved in NVIDIA's layout under ``root``."""
    import shutil

    import torch
    import yaml
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from harness import embedded_path

    embedded, lm = Path(embedded_path(EMBEDDED_LM)), root / "lm"
    lm.mkdir(parents=True)
    text = json.loads((embedded / "config.json").read_text())["text_config"]
    torch.manual_seed(seed)
    Qwen2ForCausalLM(Qwen2Config(**{k: v for k, v in text.items() if k != "model_type"})).save_pretrained(lm)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(embedded / name, lm / name)
    (root / "clap_ckpt").mkdir()
    torch.save({"state_dict": {}}, root / "clap_ckpt" / "epoch_16.pt")
    models = {"lang_encoder_path": str(lm), "tokenizer_path": str(lm), "cross_attn_every_n_layers": 1,
              "audio_transformer_kwargs": AUDIO_TRANSFORMER}
    (root / "configs").mkdir()
    (root / "configs" / "inference.yaml").write_text(
        yaml.safe_dump({"clap_config": CLAP, "model_config": models}))
    with clap_on_cpu_without_cuda():
        model, _ = factory.create_model_and_transforms(
            **models, clap_config=dict(CLAP, checkpoint=str(root / CLAP["checkpoint"])),
            use_local_files=True, gradient_checkpointing=False, freeze_lm_embeddings=True)
    open_gates(model, seed)
    (root / "safe_ckpt").mkdir()
    save_file(unique_state(model), str(root / "safe_ckpt" / "chunk_0.safetensors"))
    (root / "safe_ckpt" / "metadata.json").write_text(json.dumps(["chunk_0"]))


def open_gates(model, seed: int) -> None:
    """In place: the cross-attention's gates opened (0 at init: no clip would reach the answer)
    and its projections drawn wide enough that each clip shows."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():  # each shared parameter once
            if name.endswith(("attn_gate", "ff_gate")):
                parameter.fill_(0.5)
            elif "gated_cross_attn" in name and name.endswith("weight") and ".norm." not in name:
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))


def unique_state(model) -> dict:
    """The model's tensors for a safetensors file: one name for a tensor registered under two
    (NVIDIA's FlamingoLayer holds its cross-attention block, which the LM lists as well)."""
    seen, state = set(), {}
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            state[name] = tensor.contiguous().clone()
    return state


QWEN2_5_3B = {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008,
              "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
              "max_position_embeddings": 32768, "rope_theta": 1_000_000.0,
              "tie_word_embeddings": True}  # Audio Flamingo 2's language model
NVIDIA_CLAP = dict(CLAP, audio_embed_dim=2048)  # HTSAT large, as NVIDIA's inference.yaml
NVIDIA_AUDIO_TRANSFORMER = dict(AUDIO_TRANSFORMER, n_layers=3, d_inner=2048,
                                common_encoder_embed_dim=1024)


def af2_backends(tiny: bool, device: str, batch_size: int):
    """A batched and a one-clip backend on one Audio Flamingo 2 built by NVIDIA's factory with
    random weights, its gates opened: full size (HTSAT large, Qwen2.5-3B's architecture, Qwen's
    tokenizer where built) or the small model of this check (``tiny``). float32, the adapter's
    default, as NVIDIA runs it. The LM is drawn from its config, not read from a folder."""
    import tempfile

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from bench.workload import processor_path
    from harness import embedded_path
    from harness.models.af2_native import AudioFlamingo2Backend, nvidia_factory

    factory = nvidia_factory()
    if hasattr(factory, "CLAPAudioCfp"):  # NVIDIA's (a stand-in may have none)
        factory.CLAPAudioCfp.model_name = "tiny" if tiny else "large"
    text = (json.loads((Path(embedded_path(EMBEDDED_LM)) / "config.json").read_text())["text_config"]
            if tiny else QWEN2_5_3B)
    config = Qwen2Config(**{k: v for k, v in text.items() if k != "model_type"})
    clap = CLAP if tiny else NVIDIA_CLAP

    class RandomLM:  # what the factory's AutoModelForCausalLM.from_pretrained returns
        @staticmethod
        def from_pretrained(*args, **kwargs):
            return Qwen2ForCausalLM(config)

    factory.AutoModelForCausalLM = RandomLM
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work, torch.device(device), clap_on_cpu_without_cuda():
        torch.save({"state_dict": {}}, Path(work) / "clap.pt")
        model, tokenizer = factory.create_model_and_transforms(
            clap_config=dict(clap, checkpoint=str(Path(work) / "clap.pt")),
            lang_encoder_path="random", tokenizer_path=str(processor_path(tiny)),
            audio_transformer_kwargs=AUDIO_TRANSFORMER if tiny else NVIDIA_AUDIO_TRANSFORMER,
            use_local_files=True, gradient_checkpointing=False, freeze_lm_embeddings=True)
    open_gates(model, 0)
    model = model.to(device, torch.float32)
    return (AudioFlamingo2Backend("bench", model, tokenizer, clap, "random", batch_size),
            AudioFlamingo2Backend("bench-plain", model, tokenizer, clap, "random", 1))


def clips_of_several_lengths(count: int) -> list:
    """The embedded IEMOCAP's requests, every third clip tiled to 14 s or 25 s (two or three
    CLAP windows)."""
    import numpy as np

    from harness.data import load_dataset
    from harness.models import Request
    from harness.prompts import base_prompt

    dataset = load_dataset("iemocap")
    out = []
    for i, item in enumerate(list(dataset)[:count]):
        audio = item.load_audio()
        if i % 3 == 2:
            audio = np.resize(audio, 16_000 * (14 if i % 2 else 25)).astype(np.float32)
        out.append(Request(audio, base_prompt("iemocap", item.transcript, dataset.labels), item.id))
    return out, dataset.labels


def compare(backend, requests, labels, batch: int, tol: float) -> list[str]:
    """Run greedy, beam 5 and the label scores one clip at a time and ``batch`` at a time, and
    samples near temperature zero batched against greedy; print each rate; return the
    differences found."""
    import numpy as np

    from harness.models import Decoding

    problems: list[str] = []
    for what, decoding in (("greedy", Decoding(max_new_tokens=12)),
                           ("beam-5", Decoding(mode="beam", num_candidates=5, max_new_tokens=12))):
        runs = {}
        for size in (1, batch):
            backend.batch_size = size
            start = time.perf_counter()
            runs[size] = backend.generate(requests, decoding)
            print(f"{what:7} {size:2} a batch: {len(requests) / (time.perf_counter() - start):7.2f} utt/s")
        for r, one, many in zip(requests, runs[1], runs[batch]):
            problems += differences(f"{what} {r.name}", one, many, tol)
        if what == "greedy":
            problems += cold_samples(backend, requests, runs[1])
    scores = {}
    for size in (1, batch):
        backend.batch_size = size
        scores[size] = np.stack([row.logprobs for row in backend.label_logprobs(requests, labels)])
    gap = float(np.abs(scores[1] - scores[batch]).max())
    print(f"label scores: largest difference {gap:.2e}")
    if not gap <= tol:
        problems.append(f"label scores differ by {gap:.2e}")
    return problems


def cold_samples(backend, requests, greedy) -> list[str]:
    """Three samples of each clip at a temperature near zero, the clips batched: each must be the
    clip's greedy answer (samples are a batch's rows, each clip's repeated per sample)."""
    from harness.models import Decoding

    cold = backend.generate(requests, Decoding(mode="sample", num_candidates=3, max_new_tokens=12,
                                               temperature=1e-6, top_p=1.0))
    problems = [f"cold samples {r.name}: {[c.text for c in g.candidates]} / {one.candidates[0].text!r}"
                for r, g, one in zip(requests, cold, greedy)
                if g.error or {c.text for c in g.candidates} != {one.candidates[0].text}]
    print(f"cold samples: {len(requests) - len(problems)} of {len(requests)} clips' three samples "
          "their greedy answer")
    return problems


def differences(where: str, one, many, tol: float) -> list[str]:
    """What differs between an item's two generations: errors, the candidates' answers (as a
    set: beams whose α tie within float noise may come in either order) or their α."""
    if one.error or many.error:
        return [f"{where}: errors {one.error!r} / {many.error!r}"]
    a, b = (sorted(g.candidates, key=lambda c: (c.text, c.logprob)) for g in (one, many))
    if [c.text for c in a] != [c.text for c in b]:
        return [f"{where}: answers differ: {[c.text for c in a]} / {[c.text for c in b]}"]
    gaps = [abs(x.logprob - y.logprob) for x, y in zip(a, b)]
    return [f"{where}: alpha differs by {max(gaps):.2e}"] if max(gaps) > tol else []


def main(argv=None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=9)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda where present)")
    args = parser.parse_args(argv)
    factory = small_factory()
    import torch
    import transformers

    from harness.models import get_model

    code = Path(factory.__file__).resolve().parent.parent
    print(f"NVIDIA's code from {code}; torch {torch.__version__}, transformers "
          f"{transformers.__version__}; {args.clips} clips, batches of {args.batch}")

    with tempfile.TemporaryDirectory() as work:
        build_checkpoint(factory, Path(work) / "af2")
        with clap_on_cpu_without_cuda():
            backend = get_model("audio-flamingo-2", path=Path(work) / "af2", device=args.device)
        requests, labels = clips_of_several_lengths(args.clips)
        problems = compare(backend, requests, labels, args.batch, args.tol)
    for problem in problems:
        print("DIFFERENT:", problem)
    print(f"{len(requests)} clips: " + ("batched equal to one at a time" if not problems else
                                        f"{len(problems)} differences"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
